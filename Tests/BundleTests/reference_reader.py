#!/usr/bin/env python3
"""An independent reader of secretc bundles, written from docs/bundle-format.md
alone: the gpg command line, SHA-256, base64 and AES-256-GCM (Python's
`cryptography` package). It verifies steps 1-7 of the spec and prints each
value as `owner/plugin/KEY<TAB>base64(value)` (or `<TAB>unavailable` for a
user's write that step 7 contains), or exits 1 with the reason.

usage: reference_reader.py BUNDLE PINNED_ADMIN_FPR[,FPR...]   (GNUPGHOME holds a recipient's secret key)
"""
import base64, hashlib, os, re, subprocess, sys, tempfile, urllib.parse
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def fail(reason):
    print("refused: " + reason, file=sys.stderr)
    sys.exit(1)


def gpg(home, args, data=None):
    return subprocess.run(["gpg", "--homedir", home, "--batch", "--no-tty", "--status-fd", "2"] + args,
                          input=data, capture_output=True)


def verify(home, signature, payload, signer):
    with tempfile.NamedTemporaryFile() as sig, tempfile.NamedTemporaryFile() as data:
        sig.write(signature); sig.flush(); data.write(payload); data.flush()
        result = gpg(home, ["--verify", sig.name, data.name])
    lines = result.stderr.decode(errors="replace").splitlines()
    valid = [l.split() for l in lines if l.startswith("[GNUPG:] VALIDSIG ")]
    # VALIDSIG <signing-key-fpr> ... <primary-key-fpr> is the last field of the line.
    if result.returncode != 0 or not valid or valid[0][-1] != signer:
        fail("bad signature by " + signer)
    return int(valid[0][4])  # VALIDSIG fpr date timestamp ...: when it was signed


def key_expiry(home, fingerprint):
    """When the primary key `fingerprint` expires (seconds since 1970), or None."""
    listing = gpg(home, ["--with-colons", "--fixed-list-mode", "--list-keys", fingerprint]).stdout.decode()
    for line in listing.splitlines():
        f = line.split(":")
        if f[0] == "pub": return int(f[6]) if f[6] else None
    return None


def packets(data):
    """(tag, body) of each RFC 4880 packet in fully known lengths; None when malformed."""
    at, found = 0, []
    while at < len(data):
        header = data[at]; at += 1
        if not header & 0x80: return None
        if header & 0x40:
            tag, body, partial = header & 0x3F, b"", True
            while partial:  # a body in partial lengths is its parts joined
                if at >= len(data): return None
                octet, partial = data[at], False
                at += 1
                if octet < 192: length = octet
                elif octet < 224: length = ((octet - 192) << 8) + data[at] + 192; at += 1
                elif octet == 255: length = int.from_bytes(data[at:at + 4], "big"); at += 4
                else: length, partial = 1 << (octet & 0x1F), True
                if at + length > len(data): return None
                body += data[at:at + length]; at += length
            found.append((tag, body))
            continue
        else:
            tag, kind = (header >> 2) & 0x0F, header & 3
            if kind == 3: return None
            size = (1, 2, 4)[kind]
            length = int.from_bytes(data[at:at + size], "big"); at += size
        if at + length > len(data): return None
        found.append((tag, data[at:at + length])); at += length
    return found


def key_ids(key):
    """The 64-bit ids (last 16 hex digits of the v4 fingerprint) of a key line's primary key and subkeys."""
    return {hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest().upper()[-16:]
            for tag, body in packets(key) or [] if tag in (6, 14) and body[:1] == b"\x04"}


def session_key_ids(message):
    """The key id of each version-3 public-key session key packet of a message."""
    return [body[1:9].hex().upper() for tag, body in packets(message) or [] if tag == 1 and len(body) >= 10]


def session_keys_then_one_packet(message):
    """RFC 4880 packets: version-3 public-key session keys (tag 1), then one encrypted packet (18 or 20)."""
    found = packets(message)
    return (found is not None and len(found) >= 2 and found[-1][0] in (18, 20)
            and all(tag == 1 and len(body) >= 10 and body[0] == 3 for tag, body in found[:-1]))


def canonical(epochs):
    """Epochs by time; among one time's, each after those it names in after= (when present), then by id."""
    ordered, rest = [], sorted(epochs, key=lambda e: (e["time"], e["id"]))
    while rest:
        group = [e for e in rest if e["time"] == rest[0]["time"]]
        rest = rest[len(group):]
        ids, taken = {e["id"] for e in group}, set()
        while len(taken) < len(group):
            ready = [e for e in group if e["id"] not in taken and all(
                p in taken or p not in ids or p == e["id"] for p in ([] if e["checkpoint"] else e["parent_ids"]))]
            if not ready:  # parents naming each other: the rest by id (the history rule refuses them)
                ordered += [e for e in group if e["id"] not in taken]
                break
            pick = min(ready, key=lambda e: e["id"])
            ordered.append(pick)
            taken.add(pick["id"])
    return ordered


def main():
    path, pinned = sys.argv[1], set(sys.argv[2].split(","))
    raw = open(path, "rb").read()
    if not raw.endswith(b"\n"):
        fail("truncated")
    lines = raw.decode("utf-8").split("\n")[:-1]
    if lines[0] != "secretc-bundle 2":
        fail("unsupported version line: " + lines[0])
    environment, recipients, admins, users, keys, policy, epochs, slots = None, [], [], {}, {}, None, [], []
    patterns = {}
    for line in lines[1:]:
        f = line.split(" ")
        if f[0] == "environment": environment = f[1]
        elif f[0] == "recipient": recipients.append(f[1])
        elif f[0] == "admin": admins.append(f[1])
        elif f[0] == "user": users[f[1]] = f[2]
        elif f[0] == "key": keys[f[1]] = base64.b64decode(f[2], validate=True)
        elif f[0] == "field":  # the plugin schema (covered by the policy signature); its pattern
            for part in f[3].split(";"):
                if part.startswith("pattern="): patterns[(f[1], f[2])] = urllib.parse.unquote(part[len("pattern="):])
        elif f[0] == "policy": policy = (f[3], base64.b64decode(f[4], validate=True), int(f[1]), f[2])
        elif f[0] == "epoch":
            claims = []
            for c in f[8].split(";"):
                name, digest = c.split("=", 1)
                claims.append((tuple(name.split("/")), None if digest == "-" else base64.b64decode(digest)))
            serial, policy_id = f[4].split(".")
            kind, ids = f[5].split("=")
            epochs.append(dict(time=int(f[1]), id=f[2], writer=f[3], policy=(int(serial), policy_id), parents=f[5],
                               checkpoint=kind == "subsumes", parent_ids=[] if ids == "-" else ids.split(","),
                               key=base64.b64decode(f[6]), sig=base64.b64decode(f[7]), claims=claims))
        elif f[0] == "slot": slots.append(f)
        else: fail("unknown line " + f[0])

    if [e["id"] for e in canonical(epochs)] != [e["id"] for e in epochs]:
        fail("epoch lines out of canonical order")
    variables = {}
    for s in slots:
        attributes = dict(a.split("=", 1) if "=" in a else (a, "") for a in s[5].split(";"))
        scopes = attributes.get("scopes", "").split(",") if "scopes" in attributes else []
        if len(scopes) != len(set(scopes)): fail("a scope listed twice")
        if variables.setdefault((s[2], s[3]), attributes["env"]) != attributes["env"]: fail("two variables for a plugin key")
    for key in keys.values():  # a transferable public key: keys, user ids and attributes, signatures
        if packets(key) is None or any(tag not in (2, 6, 13, 14, 17) for tag, _ in packets(key)):
            fail("a key line holds other packets")
    home = tempfile.mkdtemp(prefix="r.", dir="/tmp")
    try:
        # Step 3: keys.
        gpg(home, ["--import"], b"".join(keys.values()))
        # Step 4: the policy, over the policy lines and the slot lines with values masked.
        policy_lines = [l for l in lines[1:] if l.split(" ")[0] in ("environment", "recipient", "admin", "user", "key", "field")]
        masked = [" ".join(s[:4] + ["*"] + s[5:]) for s in slots]
        payload = ("secretc-policy 2\nserial %d\nprevious %s\n" % (policy[2], policy[3])
                   + "".join(l + "\n" for l in policy_lines + masked)).encode()
        if policy is None or policy[0] not in pinned or policy[0] not in admins:
            fail("policy not signed by a pinned admin")
        verify(home, policy[1], payload, policy[0])
        policy_id = hashlib.sha256(policy[1]).hexdigest()
        # Step 3: every recipient has a key line, whose key ids the packet rule compares session keys with.
        owners = {}
        for r in recipients:
            if r not in keys: fail("recipient without a key line")
            for i in key_ids(keys[r]): owners[i] = r
        # Step 5: epochs, authorization and history.
        declared = {tuple(s[1:4]) for s in slots}
        position = {e["id"]: i for i, e in enumerate(epochs)}
        if any(e["checkpoint"] and e["writer"] not in admins for e in epochs): fail("checkpoint not by an admin")
        spent = {p for e in epochs if e["checkpoint"] for p in e["parent_ids"]}  # a re-sealed id is never used again
        for i, e in enumerate(epochs):
            if e["id"] in spent: fail("epoch id named by a checkpoint")
            if e["policy"][0] > policy[2]: fail("epoch written under a newer policy")
            if e["policy"][0] == policy[2] and e["policy"][1] != policy_id: fail("epoch written under another policy")
            if not e["checkpoint"] and any(position.get(p, i) >= i for p in e["parent_ids"]): fail("missing parent")
            payload = ("secretc-epoch 2\nenvironment %s\nepoch %s\ntime %d\nwriter %s\npolicy %d %s\nparents %s\n"
                       "data-key %s\n") % (environment, e["id"], e["time"], e["writer"], e["policy"][0], e["policy"][1],
                                           e["parents"], hashlib.sha256(e["key"]).hexdigest())
            for (owner, plugin, key), digest in e["claims"]:
                payload += "claim %s %s %s %s\n" % (owner, plugin, key,
                                                    "-" if digest is None else base64.b64encode(digest).decode())
                if (owner, plugin, key) not in declared: fail("claim of an undeclared slot")
                if e["writer"] not in admins and users.get(owner) != e["writer"]: fail("unauthorized writer")
            # Its time may run ahead of its signature only as its parents' (a write after a future-dated one).
            inherited = max([x["time"] for x in epochs if x["id"] in e["parent_ids"]] or [None]) if not e["checkpoint"] else None
            e["signed"] = verify(home, e["sig"], payload.encode(), e["writer"])
            if e["time"] > e["signed"] + 300 and e["time"] != inherited:
                fail("epoch time ahead of its signature")
            # Its key is judged no earlier than the signatures of the writes it follows (300 s of skew):
            # a key that expired cannot keep writing by dating its signatures back.
            expires = key_expiry(home, e["writer"])
            if expires and any(x["signed"] - 300 >= expires for x in epochs[:i] if x["id"] in e["parent_ids"]):
                fail("signed by a key that expired before the writes it follows")
        # Step 6: values against the latest claims.
        latest = {}
        for e in epochs:  # canonical order: the chain's, not only the clock's
            for slot, digest in e["claims"]: latest[slot] = (e, digest)
        for s in slots:
            slot, value = tuple(s[1:4]), s[4]
            claim = latest.get(slot)
            if value == "-":
                if claim and claim[1] is not None: fail("dropped value " + "/".join(slot))
                continue
            epoch_id, data = value.split(".", 1)
            data = base64.b64decode(data, validate=True)
            if not claim or claim[0]["id"] != epoch_id or claim[1] != hashlib.sha256(data).digest():
                fail("value does not match its claim " + "/".join(slot))
        # Step 7: decrypt data keys with the recipient's key (the caller's GNUPGHOME), open values.
        # A failure in a user's epoch makes its values unavailable; in an admin's it refuses.
        by_id = {e["id"]: e for e in epochs}
        data_keys, opened = {}, 0
        for s in slots:
            if s[4] == "-": continue
            epoch_id = s[4].split(".", 1)[0]
            if epoch_id in data_keys: continue
            message = by_id[epoch_id]["key"]
            key = None
            ids = session_key_ids(message)
            if (len(message) <= 65536 and session_keys_then_one_packet(message) and all(i in owners for i in ids)
                    and {owners[i] for i in ids} == set(recipients)):
                result = subprocess.run(["gpg", "--batch", "--quiet", "--decrypt"], input=message, capture_output=True)
                if result.returncode == 0 and len(result.stdout) == 32: key = result.stdout
            if key is None and by_id[epoch_id]["writer"] in admins: fail("cannot decrypt an admin's data key")
            opened += key is not None
            data_keys[epoch_id] = key
        if data_keys and not opened:
            held = subprocess.run(["gpg", "--batch", "--list-secret-keys"] + recipients, capture_output=True)
            if held.returncode != 0: fail("no secret key of a recipient")
        for s in slots:
            if s[4] == "-": continue
            epoch_id, data = s[4].split(".", 1)
            name, user_epoch = "%s/%s/%s" % (s[1], s[2], s[3]), by_id[epoch_id]["writer"] not in admins
            value = None
            if data_keys[epoch_id] is not None:
                data = base64.b64decode(data)
                aad = ("secretc-value 1\n%s\n%s\n%s\n%s\n%s" % (environment, s[1], s[2], s[3], epoch_id)).encode()
                try:
                    value = AESGCM(data_keys[epoch_id]).decrypt(data[:12], data[12:], aad)
                except Exception:
                    if not user_epoch: fail("an admin's value does not authenticate: " + name)
            if value is not None and b"\0" in value:  # no variable holds a NUL byte: a user's is contained
                if not user_epoch: fail("an admin's value holds a NUL byte: " + name)
                value = None
            pattern = patterns.get((s[2], s[3]))
            if value is not None and user_epoch and pattern is not None:
                try:
                    if re.fullmatch(pattern, value.decode("utf-8")) is None: value = None
                except UnicodeDecodeError:
                    value = None
            print("%s\t%s" % (name, "unavailable" if value is None else base64.b64encode(value).decode()))
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
        subprocess.run(["rm", "-rf", home])


if __name__ == "__main__":
    main()
