DROP TABLE upload_chunks;
