from stickerq.cli import main

main()
