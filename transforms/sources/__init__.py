"""Where the data comes from: counted, resumable HTTP streams (single or ranged) and local files."""
