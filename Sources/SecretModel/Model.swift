import GPG
