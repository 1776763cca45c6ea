from invigil.cli import main

main()
