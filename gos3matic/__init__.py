"""GoS3-matic: annotate an S3 prefix so GoCD's s3material poller sees it as a package revision."""

__version__ = "0.1.0"
