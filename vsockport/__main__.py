from vsockport.cli import main

main(prog_name="vsockport")
