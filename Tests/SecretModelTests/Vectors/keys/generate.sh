#!/usr/bin/env bash
# Regenerates the shared test keys used by the check vectors. Run from this
# folder; commit what it writes. The keys are throwaway and public.
set -euo pipefail
cd "$(dirname "$0")"
home=$(mktemp -d /tmp/g.XXXXXX)
trap 'gpgconf --homedir "$home" --kill all 2>/dev/null; rm -rf "$home"' EXIT
g() { gpg --homedir "$home" --batch --yes --pinentry-mode loopback --passphrase '' "$@"; }
fpr() { g --with-colons --list-keys "$1" | awk -F: '/^fpr/ {print $10; exit}'; }

for name in ops runtime alice other; do
  g --quick-gen-key "$name (secretc test vector) <$name@vectors.invalid>" future-default default never
  g --armor --export "$name@vectors.invalid" > "$name.asc"
done
# Can sign, cannot encrypt.
g --quick-gen-key "signonly <signonly@vectors.invalid>" ed25519 sign never
g --armor --export signonly@vectors.invalid > signonly.asc
# Can encrypt, cannot sign: a certify-only primary with an encryption subkey.
g --quick-gen-key "certonly <certonly@vectors.invalid>" ed25519 cert never
g --quick-add-key "$(fpr certonly@vectors.invalid)" cv25519 encr never
g --armor --export certonly@vectors.invalid > certonly.asc
# Expired since 2020-01-02.
g --faked-system-time 20200101T000000 --quick-gen-key "expired <expired@vectors.invalid>" future-default default 1d
g --armor --export expired@vectors.invalid > expired.asc
# Revoked.
g --quick-gen-key "revoked <revoked@vectors.invalid>" future-default default never
g --import "$home/openpgp-revocs.d/$(fpr revoked@vectors.invalid).rev" 2>/dev/null || \
  sed 's/^:-----BEGIN/-----BEGIN/' "$home/openpgp-revocs.d/$(fpr revoked@vectors.invalid).rev" | g --import
g --armor --export revoked@vectors.invalid > revoked.asc
# A secret key, which must never be declared.
g --armor --export-secret-keys ops@vectors.invalid > secret.asc
# Two keys in one file.
cat alice.asc other.asc > two.asc
# The same key as ops, in binary form.
g --export ops@vectors.invalid > ops.gpg
# Not a key at all.
printf 'this is not a key\n' > garbage.asc
for f in *.asc *.gpg; do printf '%s %s\n' "$f" "$(g --with-colons --show-keys "$f" 2>/dev/null | awk -F: '/^fpr/ {print $10; exit}')"; done > fingerprints.txt
