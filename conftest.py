from unittest import mock

import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Tests create many accounts; the production hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def no_static_file_scan(settings):
    """Pages in tests link static files but never fetch them: skip servestatic's scan per client."""
    settings.SERVESTATIC_USE_FINDERS = False


# Mid-minute and mid-hour: the clock of the rate limits in every test (fresh_rate_limits).
RATE_CLOCK = 500_000 * 3600 + 30


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Rate-limit counts live in the cache: each test starts with none, in the middle of a
    window of every period. chat.limits counts in fixed windows of the clock, and a test that
    counts up to a rate failed whenever a window turned over between its requests (one did
    in CI). A test about the windows themselves patches chat.limits.time in its turn."""
    from django.core.cache import cache

    from chat import limits

    cache.clear()
    clock = mock.Mock(time=mock.Mock(return_value=float(RATE_CLOCK)))
    with mock.patch.object(limits, "time", clock):
        yield


@pytest.fixture(autouse=True)
def default_language():
    """Each test starts and ends in the default language. The test client serves a request in
    the test's own thread, where a request in Russian leaves Russian active; in one process
    the next test was always one that reset it, but on xdist's workers it may be any test."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()
