from kmodemu.cli import main

main()
