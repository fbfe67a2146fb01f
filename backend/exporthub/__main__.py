from exporthub.cli import main

main()
