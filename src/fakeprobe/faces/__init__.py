"""Finding faces: MTCNN detection, landmarks, aligned crops, tracks of one person across frames."""
