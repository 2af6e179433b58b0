"""Password hashing and the password policy.

Hashes are werkzeug's scrypt (``scrypt:32768:8:1$salt$hash``), the format the demo seed
writes, so seeded users log in unchanged. The policy applies to every password an admin or
user sets (CLI, API); the demo seed's published passwords (admin/admin) are demo data and
are not checked — docs/security.md says so.
"""

from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash

MIN_LENGTH = 8
# Longer input is refused before hashing: scrypt over megabytes would be a cheap attack.
MAX_LENGTH = 256
HASH_METHOD = "scrypt"
# Compared against when the user does not exist, so a wrong username costs the same time.
_DUMMY_HASH = generate_password_hash("formwork-no-such-user", method=HASH_METHOD)


class PasswordRejected(ValueError):
    """The password does not meet the policy; ``str()`` says why, in plain words."""


def check_password_policy(password: str, username: str) -> None:
    """Raise ``PasswordRejected`` unless ``password`` is 8 to 256 characters, not only
    spaces, and not the username."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise PasswordRejected(f"the password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"the password must be at most {MAX_LENGTH} characters long")
    if not password.strip():
        raise PasswordRejected("the password must not be only spaces")
    if password.casefold() == username.casefold():
        raise PasswordRejected("the password must not be the username")


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password``."""
    return generate_password_hash(password, method=HASH_METHOD)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored_hash``; always false for a missing hash or an
    over-long password, after the same amount of work."""
    if not isinstance(password, str) or len(password) > MAX_LENGTH:
        check_password_hash(_DUMMY_HASH, "x")
        return False
    if not stored_hash:
        check_password_hash(_DUMMY_HASH, password)
        return False
    try:
        return check_password_hash(stored_hash, password)
    except ValueError:  # a hash in an unknown format: never a match
        return False
