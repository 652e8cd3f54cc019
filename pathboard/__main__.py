from pathboard.cli import main

main()
