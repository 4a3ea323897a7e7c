"""Who may call and what they used: users and API keys in Postgres, the key store and
its caches, the rate limiter in Redis, admission (key, then limits) and the usage rows
with their writer. It raises its own errors (`accounts.errors`) and knows nothing of
HTTP: `api/` turns those errors into answers.
"""
