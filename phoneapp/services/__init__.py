"""Operations on the domain, shared by webhooks, the JSON API, pages and the command line."""
