from schoolcomms.cli import main

main()
