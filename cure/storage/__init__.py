"""Result storage behind one small interface: S3 (MinIO, AWS, ...) or a local directory."""
