"""Listing clients: one pure parser per provider listing format, and the fetch driver that pages them."""
