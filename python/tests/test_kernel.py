"""The Python binding against the example's real bundle and EXAMPLE-ONLY keys."""

import threading

import pytest

import secretc
from conftest import ADMIN, ROOT


def make(bundle, key, **options):
    options.setdefault("fallback_environment", {})
    return secretc.Kernel(bundle=bundle, environment="production", trusted_admins=[ADMIN], key=key,
                          protect_process=False, **options)


def test_resolution_order_user_then_deployment_then_environment(bundle, runtime_key):
    kernel = make(bundle, runtime_key, fallback_environment={"SHOPIFY_API_VERSION": "2024-10"})
    assert kernel.secret("github", "TOKEN", user="alice").source == "user slot (alice)"
    # No slot of his own: the deployment-wide slot, never another user's.
    bob = kernel.secret("github", "TOKEN", user="bob")
    assert bob.source == "deployment-wide slot"
    assert bob.value != kernel.get_secret("github", "TOKEN", user="alice")
    # Declared and pending: the variable named in the manifest.
    assert kernel.secret("shopify", "API_VERSION", user="carol").source == "environment variable SHOPIFY_API_VERSION"
    assert kernel.get_secret("shopify", "API_VERSION", user="carol") == "2024-10"
    assert kernel.get_secret("github", "APP_ID", user=None) == "123456"
    assert "<redacted>" in repr(kernel.secret("github", "APP_ID", user=None))


def test_the_owner_is_required(bundle, runtime_key):
    kernel = make(bundle, runtime_key)
    with pytest.raises(TypeError):
        kernel.get_secret("shopify", "ADMIN_TOKEN")  # type: ignore[call-arg]
    # A shared workbook runs with its owner's secrets, not the viewer's.
    owner, viewer = "alice", "carol"
    assert kernel.get_secret("shopify", "STORE_DOMAIN", user=owner) != kernel.get_secret(
        "shopify", "STORE_DOMAIN", user=viewer)
    # Deployment-wide only, said out loud: alice's own slot is not consulted.
    assert kernel.get_secret("shopify", "STORE_DOMAIN", user=None) is None


def test_typed_reasons(bundle, runtime_key):
    kernel = make(bundle, runtime_key)
    with pytest.raises(secretc.NotSet) as not_set:
        kernel.secret("stripe", "WEBHOOK_SECRET", user="bob")
    assert not_set.value.environment_variable == "STRIPE_WEBHOOK_SECRET"
    with pytest.raises(secretc.Undeclared) as typo:
        kernel.secret("shopifi", "ADMIN_TOKEN", user="alice")
    assert "did you mean 'shopify'" in str(typo.value)
    assert kernel.get_secret("shopifi", "ADMIN_TOKEN", user="alice") is None
    with pytest.raises(secretc.Undeclared):
        kernel.status("no-such-plugin", user=None)
    # Bob's stripe key is scoped to formulas: out of scope for another service.
    scoped = make(bundle, runtime_key, scope="webhooks")
    with pytest.raises(secretc.OutOfScope):
        scoped.secret("stripe", "SECRET_KEY", user="bob")


def test_status_has_the_seeds_shape_and_no_value(bundle, runtime_key):
    kernel = make(bundle, runtime_key)
    status = kernel.status("shopify", user="alice")
    assert status["plugin_slug"] == "shopify"
    assert [entry["key"] for entry in status["declared"]] == ["STORE_DOMAIN", "ADMIN_TOKEN", "API_VERSION"]
    assert status["set_keys"] == ["ADMIN_TOKEN", "STORE_DOMAIN"]
    assert kernel.get_secret("shopify", "ADMIN_TOKEN", user="alice") not in str(status)
    variables = kernel.environment_variables(user="alice")
    assert variables["GITHUB_TOKEN"] == kernel.get_secret("github", "TOKEN", user="alice")
    assert variables["GITHUB_APP_ID"] == "123456"


def test_a_tampered_bundle_is_refused(bundle, runtime_key):
    data = bytearray(bundle.read_bytes())
    position = data.index(b"value ") + 20 if b"value " in data else len(data) // 2
    data[position] = ord("A") if data[position] != ord("A") else ord("B")
    bundle.write_bytes(bytes(data))
    with pytest.raises(secretc.KernelError) as refused:
        make(bundle, runtime_key)
    assert refused.value.kind in ("verification_failed", "invalid_bundle", "undecryptable")


def test_the_environment_is_required(bundle, runtime_key):
    for missing in (None, ""):
        with pytest.raises(ValueError):
            secretc.Kernel(bundle=bundle, environment=missing, trusted_admins=[ADMIN], key=runtime_key,
                           protect_process=False)


def test_a_bundle_of_another_environment_or_admin_is_refused(bundle, runtime_key):
    with pytest.raises(secretc.KernelError) as other:
        secretc.Kernel(bundle=bundle, environment="staging", trusted_admins=[ADMIN], key=runtime_key,
                       protect_process=False)
    assert other.value.kind == "verification_failed"
    with pytest.raises(secretc.KernelError) as pins:
        secretc.Kernel(bundle=bundle, environment="production", trusted_admins=["not-a-fingerprint"],
                       key=runtime_key, protect_process=False)
    assert pins.value.kind == "misconfigured"


def test_reload_keeps_the_good_bundle(bundle, runtime_key):
    kernel = make(bundle, runtime_key)
    token = kernel.get_secret("github", "TOKEN", user="alice")
    good = bundle.read_bytes()
    bundle.write_bytes(good[:-40])
    with pytest.raises(secretc.KernelError):
        kernel.reload()
    assert kernel.get_secret("github", "TOKEN", user="alice") == token
    assert kernel.info["reload_failures"] == 1
    bundle.write_bytes(good)
    kernel.reload()
    assert kernel.info["reloads"] == 1


def test_eight_threads_look_up_during_reloads(bundle, runtime_key):
    kernel = make(bundle, runtime_key)
    expected = {
        ("github", "TOKEN", "alice"): kernel.get_secret("github", "TOKEN", user="alice"),
        ("github", "TOKEN", "bob"): kernel.get_secret("github", "TOKEN", user="bob"),
        ("shopify", "ADMIN_TOKEN", "carol"): kernel.get_secret("shopify", "ADMIN_TOKEN", user="carol"),
        ("github", "APP_ID", None): "123456",
    }
    stop = threading.Event()
    wrong, lookups = [], [0] * 8

    def look(index):
        items = list(expected.items())
        while not stop.is_set():
            (plugin, key, user), value = items[lookups[index] % len(items)]
            if kernel.get_secret(plugin, key, user=user) != value:
                wrong.append((plugin, key, user))
            lookups[index] += 1

    threads = [threading.Thread(target=look, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    good = bundle.read_bytes()
    try:
        for round in range(10):
            if round % 3 == 2:
                bundle.write_bytes(good[: len(good) // 2])
                with pytest.raises(secretc.KernelError):
                    kernel.reload()
                bundle.write_bytes(good)
            else:
                kernel.reload()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not wrong
    assert min(lookups) > 0
    assert kernel.info["reloads"] == 7



def test_a_closed_kernel_serves_nothing(bundle, runtime_key):
    kernel = make(bundle, runtime_key)
    assert kernel.get_secret("github", "APP_ID", user=None) == "123456"
    kernel.close()
    with pytest.raises(ValueError):
        kernel.get_secret("github", "APP_ID", user=None)
    with pytest.raises(ValueError):
        kernel.secret("github", "APP_ID", user=None)


VECTORS = ROOT / "Tests" / "BundleTests" / "Vectors"


def _vector(tmp_path, name):
    """A bundle vector's bundle, and the admin it pins."""
    text = (VECTORS / name).read_bytes()
    header, _, body = text.partition(b"\n\n")
    pinned = [line.split(b": ", 1)[1].decode() for line in header.split(b"\n") if line.startswith(b"pinned: ")][0]
    path = tmp_path / "vector.bundle"
    path.write_bytes(body)
    return path, pinned


def test_a_value_with_a_nul_byte_sets_no_other_variable(tmp_path, runtime_key):
    # alice signed "github_pat_…\0LD_PRELOAD=/tmp/evil.so": the value is
    # unavailable, and nothing after its NUL becomes a variable.
    path, pinned = _vector(tmp_path, "user-value-holds-nul.txt")
    kernel = secretc.Kernel(bundle=str(path), environment="production", trusted_admins=[pinned], key=runtime_key,
                            protect_process=False, fallback_environment={})
    variables = kernel.environment_variables(user="alice")
    assert "LD_PRELOAD" not in variables
    assert all("\0" not in value for value in variables.values())
    assert "GITHUB_TOKEN" not in variables
    assert kernel.get_secret("github", "TOKEN", user="alice") is None
    with pytest.raises(secretc.Unavailable):
        kernel.secret("github", "TOKEN", user="alice")
    kernel.close()


def test_a_name_never_smuggles_an_owner(bundle, runtime_key):
    kernel = make(str(bundle), runtime_key)
    assert kernel.get_secret("shopify", "STORE_DOMAIN", user="alice") is not None
    assert kernel.get_secret("shopify", "STORE_DOMAIN\0alice", user=None) is None
    assert kernel.get_secret("shopify\0", "STORE_DOMAIN", user="alice") is None
    for call in (lambda: kernel.secret("shopify", "STORE_DOMAIN\0alice", user=None),
                 lambda: kernel.status("shopify\0x", user=None),
                 lambda: kernel.environment_variables(user="alice\0bob")):
        with pytest.raises(ValueError):
            call()
    kernel.close()
