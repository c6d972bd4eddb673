"""Verified secretc bundles from Python.

A :class:`Kernel` loads one environment's bundle with the Swift
``SecretKernel`` (through its C ABI: the same verification a Swift service
runs — every signature against the pinned admins, every write's
authorization and history, every ciphertext) and serves lookups from
memory::

    kernel = secretc.Kernel(bundle="secrets/production.bundle", environment="production",
                            trusted_admins=["B10C30114A7A5CE22215A9196B7A4E014FFA39D1"])
    token = kernel.get_secret("shopify", "ADMIN_TOKEN", user=workbook.owner)

Resolution: the user's own slot, then the deployment-wide slot, then the
environment variable (the manifest's ``env``, else ``SLUG_KEY``). Pass
``user=None`` explicitly for deployment-wide values only: the owner is a
required argument, never a default.

Values cross from the library once, into a Python ``str``; the library
zeroes its copy before releasing it.
"""

from __future__ import annotations

import ctypes
import json
import os
import threading
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Union

__all__ = [
    "Kernel",
    "KernelError",
    "SecretUnavailable",
    "NotSet",
    "Expired",
    "Inactive",
    "OutOfScope",
    "Unavailable",
    "Undeclared",
]


class KernelError(Exception):
    """A bundle that was not loaded (or reloaded): nothing of it is served.

    ``kind`` is one of ``unreadable``, ``invalid_bundle``,
    ``verification_failed`` (a bad signature, another environment's bundle,
    a rollback), ``key_unavailable``, ``undecryptable`` or ``misconfigured``,
    as the Swift ``SecretKernelError.Kind`` names them.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class SecretUnavailable(LookupError):
    """No value to serve for a lookup, and why (``reason``). Never holds a value."""

    reason = "unavailable"

    def __init__(self, detail: Mapping[str, Any]) -> None:
        super().__init__(detail.get("message", self.reason))
        self.plugin: str = detail.get("plugin", "")
        self.key: str = detail.get("key", "")
        self.user: Optional[str] = detail.get("user")
        self.environment_variable: str = detail.get("environment_variable", "")
        self.detail: Dict[str, Any] = dict(detail)


class NotSet(SecretUnavailable):
    """Neither a slot value nor the environment variable is set."""

    reason = "not_set"


class Expired(SecretUnavailable):
    """The value expired (``detail['expires']``) and is not served."""

    reason = "expired"


class Inactive(SecretUnavailable):
    """The slot is marked inactive: its value is kept but not served."""

    reason = "inactive"


class OutOfScope(SecretUnavailable):
    """The slot's scopes do not include the kernel's ``scope``."""

    reason = "out_of_scope"


class Unavailable(SecretUnavailable):
    """The slot holds a signed value this loader could not use; nothing stands in for it."""

    reason = "unavailable"


class Undeclared(SecretUnavailable):
    """The bundle's signed schema declares no such plugin or key: a typo, not a missing value."""

    reason = "undeclared"


_REASONS = {cls.reason: cls for cls in (NotSet, Expired, Inactive, OutOfScope, Unavailable, Undeclared)}

_Bytes = ctypes.POINTER(ctypes.c_uint8)


def _library_path() -> str:
    given = os.environ.get("SECRETC_KERNEL_LIBRARY")
    if given:
        return given
    return str(Path(__file__).resolve().parent / "lib" / "libSecretKernelC.so")


def _load_library() -> ctypes.CDLL:
    lib = ctypes.CDLL(_library_path())
    out_string = ctypes.POINTER(ctypes.c_void_p)
    lib.secretc_kernel_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, out_string]
    lib.secretc_kernel_open.restype = ctypes.c_void_p
    lib.secretc_kernel_close.argtypes = [ctypes.c_void_p]
    lib.secretc_kernel_close.restype = None
    lookup = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_Bytes),
              ctypes.POINTER(ctypes.c_size_t)]
    lib.secretc_kernel_get.argtypes = lookup
    lib.secretc_kernel_get.restype = ctypes.c_int32
    # The hot path: no argtypes (their converters cost more than the lookup);
    # the caller passes a c_void_p handle, bytes, C-int-sized ints and a ctypes
    # buffer, which is exactly the C signature (both lengths are C ints).
    lib.secretc_kernel_lookup.restype = ctypes.c_ssize_t
    lib.secretc_kernel_secret.argtypes = lookup + [out_string]
    lib.secretc_kernel_secret.restype = ctypes.c_int32
    lib.secretc_kernel_status.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, out_string]
    lib.secretc_kernel_status.restype = ctypes.c_int32
    lib.secretc_kernel_environment.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(_Bytes),
                                               ctypes.POINTER(ctypes.c_size_t)]
    lib.secretc_kernel_environment.restype = ctypes.c_int32
    lib.secretc_kernel_reload.argtypes = [ctypes.c_void_p, out_string]
    lib.secretc_kernel_reload.restype = ctypes.c_int32
    lib.secretc_kernel_info.argtypes = [ctypes.c_void_p]
    lib.secretc_kernel_info.restype = ctypes.c_void_p
    lib.secretc_free_value.argtypes = [_Bytes, ctypes.c_size_t]
    lib.secretc_free_value.restype = None
    lib.secretc_free_string.argtypes = [ctypes.c_void_p]
    lib.secretc_free_string.restype = None
    return lib


_lib: Optional[ctypes.CDLL] = None
_lib_lock = threading.Lock()


def _library() -> ctypes.CDLL:
    global _lib
    with _lib_lock:
        if _lib is None:
            _lib = _load_library()
        return _lib


def _take_string(lib: ctypes.CDLL, pointer: ctypes.c_void_p) -> str:
    if not pointer.value:
        return ""
    try:
        return ctypes.string_at(pointer.value).decode("utf-8")
    finally:
        lib.secretc_free_string(pointer.value)


def _take_value(lib: ctypes.CDLL, pointer: Any, length: ctypes.c_size_t) -> bytes:
    try:
        return ctypes.string_at(pointer, length.value)
    finally:
        lib.secretc_free_value(pointer, length.value)


def _encode(text: Optional[str]) -> Optional[bytes]:
    """A name as a C string. One holding a NUL byte is refused: C would cut it
    there (``"KEY\\0alice"`` read as ``KEY``), and no declared name holds one."""
    if text is None:
        return None
    if "\0" in text:
        raise ValueError("a plugin, key or user name holds a NUL byte, which no declared name does")
    return text.encode("utf-8")


class Kernel:
    """One environment's verified bundle, served from memory.

    :param bundle: the bundle file (``secrets/production.bundle``).
    :param environment: the environment this service runs in (required); a
        bundle of any other is refused.
    :param trusted_admins: the admin fingerprints the service pins (40 hex
        digits each), from its own configuration, never from the repository.
    :param key: the runtime secret key, ASCII-armored (``bytes`` or ``str``),
        with ``passphrase`` if it has one; else ``gnupghome``; else the
        process environment's ``SECRETC_GPG_KEY`` or ``GNUPGHOME``.
    :param scope: serve only slots whose scopes include it (or have none).
    :param trusted_state: a file that remembers the last bundle served, so a
        restarted process refuses a rolled-back one.
    :param fallback_environment: where the environment-variable fallback
        looks (default: ``os.environ`` when the kernel is made).
    :param protect_process: mark the process non-dumpable (default True).
    :raises KernelError: when the bundle does not load; nothing is served.
    """

    def __init__(
        self,
        bundle: Union[str, os.PathLike],
        environment: str,
        trusted_admins: Iterable[str],
        key: Union[bytes, str, None] = None,
        passphrase: Optional[str] = None,
        gnupghome: Optional[str] = None,
        scope: Optional[str] = None,
        trusted_state: Optional[str] = None,
        fallback_environment: Optional[Mapping[str, str]] = None,
        protect_process: bool = True,
    ) -> None:
        if not environment:
            raise ValueError("environment is required: the deployment environment this service runs in "
                             "(without it a bundle of another environment would be served)")
        self._lib = _library()
        configuration: Dict[str, Any] = {
            "bundle": os.fspath(bundle),
            "trusted_admins": [pin.strip() for pin in trusted_admins if pin.strip()],
            "protect_process": protect_process,
        }
        for name, value in (("environment", environment), ("gnupghome", gnupghome), ("scope", scope),
                            ("trusted_state", trusted_state)):
            if value is not None:
                configuration[name] = value
        # The runtime key's variables are never fallback values.
        source = os.environ if fallback_environment is None else fallback_environment
        configuration["fallback_environment"] = {
            name: value for name, value in source.items() if not name.startswith("SECRETC_GPG_")}
        key_bytes = key.encode("utf-8") if isinstance(key, str) else key
        error = ctypes.c_void_p()
        handle = self._lib.secretc_kernel_open(
            json.dumps(configuration).encode("utf-8"), key_bytes, len(key_bytes or b""), _encode(passphrase),
            ctypes.byref(error))
        if not handle:
            detail = json.loads(_take_string(self._lib, error) or "{}")
            raise KernelError(detail.get("kind", "unknown"), detail.get("message", "the bundle was not loaded"))
        self._handle: Optional[int] = handle
        self._local = threading.local()
        self._lookup = self._lib.secretc_kernel_lookup
        self._handle_argument = ctypes.c_void_p(handle)

    def _live(self) -> int:
        if not self._handle:
            raise ValueError("the kernel is closed")
        return self._handle

    def get_secret(self, plugin: str, key: str, *, user: Optional[str]) -> Optional[str]:
        """The value to use for ``plugin``'s ``key`` on behalf of ``user``, or None.

        ``user`` is required: name the owner of the resource (a shared
        workbook's owner, never its viewer), or pass ``None`` for the
        deployment-wide value only. An undeclared plugin or key returns None
        and is warned about once on standard error.
        """
        # The hot path: one call, the value written straight into this
        # thread's buffer (which the library zeroes at each call), read
        # through a memoryview without an intermediate bytes object.
        # The names one after another, their lengths saying where each ends:
        # no separator a name could hold ("KEY\0alice" is a key, never a user).
        plugin_bytes = plugin.encode("utf-8")
        key_bytes = key.encode("utf-8")
        if user is None:
            names, user_length = plugin_bytes + key_bytes, -1
        else:
            user_bytes = user.encode("utf-8")
            names, user_length = plugin_bytes + key_bytes + user_bytes, len(user_bytes)
        try:
            buffer, view, capacity = self._local.space
        except AttributeError:
            buffer, view, capacity = self._local.space = self._space(256)
        if len(names) > 0x7FFF_FFFF:
            raise ValueError("a name longer than 2 GiB")
        length = self._lookup(self._handle_argument, names, len(plugin_bytes), len(key_bytes), user_length, buffer,
                              capacity)
        if length >= 0:
            return str(view[:length], "utf-8")
        if length == -1:
            if not self._handle:
                raise ValueError("the kernel is closed")
            return None
        buffer, view, capacity = self._local.space = self._space(-length - 2)  # larger than any value before
        length = self._lookup(self._handle_argument, names, len(plugin_bytes), len(key_bytes), user_length, buffer,
                              capacity)
        return str(view[:length], "utf-8") if length >= 0 else None

    @staticmethod
    def _space(capacity: int):
        buffer = ctypes.create_string_buffer(capacity)
        if capacity > 0x7FFF_FFFF:
            raise MemoryError("a value larger than 2 GiB")
        return buffer, memoryview(buffer).cast("B"), capacity

    def secret(self, plugin: str, key: str, *, user: Optional[str]) -> "Secret":
        """Like :meth:`get_secret`, with where the value came from.

        :raises SecretUnavailable: a subclass naming why there is no value
            (:class:`NotSet`, :class:`Expired`, :class:`Inactive`,
            :class:`OutOfScope`, :class:`Unavailable`, :class:`Undeclared`).
        """
        value = _Bytes()
        length = ctypes.c_size_t()
        detail = ctypes.c_void_p()
        code = self._lib.secretc_kernel_secret(self._live(), _encode(plugin), _encode(key),
                                               _encode(user), ctypes.byref(value), ctypes.byref(length),
                                               ctypes.byref(detail))
        text = _take_string(self._lib, detail)
        if code != 0:
            info = json.loads(text or "{}")
            raise _REASONS.get(info.get("reason", ""), SecretUnavailable)(info)
        return Secret(_take_value(self._lib, value, length).decode("utf-8"), text)

    def status(self, plugin: str, *, user: Optional[str]) -> Dict[str, Any]:
        """The seeds' settings answer: ``plugin_slug``, ``declared``, ``set_keys``, and each slot's state.

        Never a value. :raises Undeclared: for a plugin the bundle does not declare.
        """
        out = ctypes.c_void_p()
        code = self._lib.secretc_kernel_status(self._live(), _encode(plugin), _encode(user), ctypes.byref(out))
        info = json.loads(_take_string(self._lib, out) or "{}")
        if code != 0:
            raise _REASONS.get(info.get("reason", ""), SecretUnavailable)(info)
        return info

    def environment_variables(self, *, user: Optional[str]) -> Dict[str, str]:
        """Every served value under its variable name: deployment-wide, then ``user``'s own (which win)."""
        value = _Bytes()
        length = ctypes.c_size_t()
        self._lib.secretc_kernel_environment(self._live(), _encode(user), ctypes.byref(value), ctypes.byref(length))
        block = _take_value(self._lib, value, length)
        variables: Dict[str, str] = {}
        at = 0
        while at < len(block):  # entries of length-prefixed name and value: no separator to split on
            size = int.from_bytes(block[at:at + 4], "little")
            name = block[at + 4:at + 4 + size].decode("utf-8")
            at += 4 + size
            size = int.from_bytes(block[at:at + 4], "little")
            variables[name] = block[at + 4:at + 4 + size].decode("utf-8")
            at += 4 + size
        return variables

    def reload(self) -> None:
        """Verifies the bundle file again and swaps it in.

        :raises KernelError: the new bundle was refused; the loaded one keeps serving.
        """
        error = ctypes.c_void_p()
        if self._lib.secretc_kernel_reload(self._live(), ctypes.byref(error)) != 0:
            detail = json.loads(_take_string(self._lib, error) or "{}")
            raise KernelError(detail.get("kind", "unknown"), detail.get("message", "the bundle was not reloaded"))

    @property
    def info(self) -> Dict[str, Any]:
        """What is loaded: environment, counts, digest, reloads — never a value."""
        pointer = ctypes.c_void_p(self._lib.secretc_kernel_info(self._live()))
        return json.loads(_take_string(self._lib, pointer) or "{}")

    def close(self) -> None:
        """Releases the loaded bundle (its values are zeroed).

        Call it once no other thread uses the kernel: lookups after it raise
        ``ValueError``, but one already under way on another thread may read
        released memory.
        """
        handle, self._handle = self._handle, None
        self._handle_argument = ctypes.c_void_p(None)  # the library answers a NULL handle with "no value"
        if handle:
            self._lib.secretc_kernel_close(handle)

    def __enter__(self) -> "Kernel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        if not self._handle:
            return "Kernel(closed)"
        info = self.info
        return f"Kernel(environment={info.get('environment')!r}, values={info.get('values')} <redacted>)"


class Secret:
    """A served value and where it came from; ``repr`` never shows the value."""

    __slots__ = ("value", "source")

    def __init__(self, value: str, source: str) -> None:
        self.value = value
        self.source = source

    def __repr__(self) -> str:
        return f"Secret(<redacted>, from {self.source})"

    __str__ = __repr__
