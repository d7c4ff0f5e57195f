"""The streaming core of the CI360 to S3 connector: no Lambda types in here."""
