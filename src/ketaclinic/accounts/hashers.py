from django.contrib.auth.hashers import Argon2PasswordHasher


class OwaspArgon2idPasswordHasher(Argon2PasswordHasher):
    """Argon2id with the OWASP Password Storage Cheat Sheet parameters (security.md §3.2):
    m = 19 MiB (19456 KiB), t = 2, p = 1. Django re-hashes older parameters at the next sign-in."""

    algorithm = "argon2"
    time_cost = 2
    memory_cost = 19456
    parallelism = 1
