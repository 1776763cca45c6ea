"""Every table of every domain, imported once so the metadata is complete (Alembic, tests)."""

from invigil.analysis import models as analysis_models  # noqa: F401
from invigil.attempts import models as attempts_models  # noqa: F401
from invigil.core import (
    jobs,  # noqa: F401
    ratelimit,  # noqa: F401
)
from invigil.core.db import Base
from invigil.evidence import models as evidence_models  # noqa: F401
from invigil.exams import models as exams_models  # noqa: F401
from invigil.exams import roster_jobs  # noqa: F401  (roster_imports)
from invigil.identity import models as identity_models  # noqa: F401
from invigil.proctoring import models as proctoring_models  # noqa: F401
from invigil.recordings import models as recordings_models  # noqa: F401
from invigil.review import models as review_models  # noqa: F401
from invigil.staff import models as staff_models  # noqa: F401

metadata = Base.metadata
