"""A formula evaluator, as the spreadsheet service's Python workers run it:
each formula of a shared workbook calls a connector with the secrets of the
workbook's owner (never the viewer's), through kernel.get_secret.

    SECRETC_TRUSTED_ADMINS=<admin fingerprint> SECRETC_GPG_KEY="$(cat runtime.asc)" \\
        python3 formulas.py secrets/production.bundle

Prints which secrets each formula found, never a value.
"""
import os
import sys

import secretc

WORKBOOKS = [
    # (workbook, owner, viewer, [(formula, plugin, keys)])
    ("Q3 sales", "alice", "carol", [("=SHOPIFY.ORDERS(\"last 7 days\")", "shopify", ["STORE_DOMAIN", "ADMIN_TOKEN"])]),
    ("Billing", "bob", "alice", [("=STRIPE.CHARGES(\"this month\")", "stripe", ["SECRET_KEY"]),
                                 ("=GITHUB.ISSUES(\"gridos/gridos\")", "github", ["TOKEN"])]),
]


def main() -> None:
    bundle = sys.argv[1] if len(sys.argv) > 1 else "secrets/production.bundle"
    key = os.environ.get("SECRETC_GPG_KEY")
    kernel = secretc.Kernel(
        bundle=bundle,
        environment="production",
        trusted_admins=os.environ["SECRETC_TRUSTED_ADMINS"].split(","),
        key=key.encode() if key else None,
        scope="formulas",
    )
    print(f"python: {kernel!r}")
    for name, owner, viewer, formulas in WORKBOOKS:
        print(f"{name} — owned by {owner}, opened by {viewer}:")
        for text, plugin, keys in formulas:
            found = []
            for key_name in keys:
                # Owner resolution: the workbook's owner, never the viewer.
                try:
                    secret = kernel.secret(plugin, key_name, user=owner)
                    found.append(f"{key_name} from {secret.source}")
                except secretc.SecretUnavailable as missing:
                    found.append(f"{key_name} missing ({missing.reason})")
            print(f"  {text}  {', '.join(found)}")
    kernel.close()


if __name__ == "__main__":
    main()
