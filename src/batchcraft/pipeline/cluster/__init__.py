"""The cluster step: FAISS spherical k-means and top-2 assignment (`kmeans`); the Spark
adapter that trains on a bounded sample and assigns every row (`stage`)."""
