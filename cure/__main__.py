from cure.cli import main

main()
