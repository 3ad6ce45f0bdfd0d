"""The inbox side of a file's way: watching the folder, judging files whole, claiming, intake."""
