"""Reading media: video decoding, still images, input lists, scene-change checks, read-ahead."""
