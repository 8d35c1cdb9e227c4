"""Synthetic material: rendered scenes, clips, the demo stream, the virtual lens and chessboard views
(:mod:`.scene`)."""
