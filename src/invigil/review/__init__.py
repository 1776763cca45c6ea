"""After the exam: review and adjudication, blind scoring, publication, the review audit log."""
