"""The CI360 contract: the webhook payload, the layout file, target keys and where sources may be."""
