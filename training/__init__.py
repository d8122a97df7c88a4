"""The training app: runs on snapshots, people's ratings of their outputs, and rounds of the loop."""
