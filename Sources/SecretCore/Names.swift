import Foundation

/// The grammar of every name secretc stores (documented in `docs/declarations.md`).
///
/// Names travel into bundle lines, file names and environment variables, so
/// none may hold white space, `/`, `=`, `:` or quotes.
public enum NameKind: String, Sendable, CaseIterable {
    /// A user id: 1-128 of `A-Z a-z 0-9 . _ @ + -`, starting with a letter or digit.
    case user = "user id"
    /// A plugin slug: lower-case words of `a-z 0-9` joined by single `-`, at most 64.
    case plugin = "plugin slug"
    /// A secret key: 1-128 of `A-Z 0-9 _` (the seeds' `^[A-Z0-9_]+$`).
    case secretKey = "secret key name"
    /// A GPG key name (a principal): 1-64 of `a-z 0-9 . _ -`, starting with a letter or digit.
    case principal = "key name"
    /// An environment: 1-32 of `a-z 0-9 -`, starting with a letter.
    case environment = "environment name"
    /// A scope (a service that may read a value): 1-64 of `a-z 0-9 _ -`, starting with a letter.
    case scope = "scope name"
    /// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`, at most 128.
    case environmentVariable = "environment variable name"

    /// The grammar as users read it in messages.
    public var rule: String {
        switch self {
        case .user: return "1-128 characters of A-Z a-z 0-9 . _ @ + -, starting with a letter or digit"
        case .plugin: return "lower-case letters and digits in words joined by single '-', starting with a letter, at most 64"
        case .secretKey: return "1-128 characters of A-Z 0-9 _"
        case .principal: return "1-64 characters of a-z 0-9 . _ -, starting with a letter or digit"
        case .environment: return "1-32 characters of a-z 0-9 -, starting with a letter"
        case .scope: return "1-64 characters of a-z 0-9 _ -, starting with a letter"
        case .environmentVariable: return "letters, digits and '_', not starting with a digit, at most 128"
        }
    }

    /// True when `name` follows this grammar.
    public func accepts(_ name: String) -> Bool { accepts(utf8: name.utf8) }

    /// True when the UTF-8 bytes `name` follow this grammar (no copy, so a
    /// bundle parser can check 100,000 names cheaply).
    @inlinable
    public func accepts<Bytes: Collection<UInt8>>(utf8 name: Bytes) -> Bool {
        guard let first = name.first else { return false }
        func all(_ allowed: (UInt8) -> Bool) -> Bool { name.allSatisfy(allowed) }
        switch self {
        case .user:
            return name.count <= 128 && (first.isLetter || first.isDigit)
                && all { $0.isLetter || $0.isDigit || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_")
                    || $0 == UInt8(ascii: "@") || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") }
        case .plugin:
            guard name.count <= 64, first.isLower else { return false }
            var previous = first
            for byte in name.dropFirst() {
                guard byte.isLower || byte.isDigit || (byte == UInt8(ascii: "-") && previous != byte) else { return false }
                previous = byte
            }
            return previous != UInt8(ascii: "-")
        case .secretKey:
            return name.count <= 128 && all { $0.isUpper || $0.isDigit || $0 == UInt8(ascii: "_") }
        case .principal:
            return name.count <= 64 && (first.isLower || first.isDigit)
                && all { $0.isLower || $0.isDigit || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
        case .environment:
            return name.count <= 32 && first.isLower && all { $0.isLower || $0.isDigit || $0 == UInt8(ascii: "-") }
        case .scope:
            return name.count <= 64 && first.isLower
                && all { $0.isLower || $0.isDigit || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
        case .environmentVariable:
            return name.count <= 128 && !first.isDigit
                && all { $0.isLetter || $0.isDigit || $0 == UInt8(ascii: "_") }
        }
    }
}

/// The environment variable the runtime reads for a slot when the manifest
/// names none: the slug and key upper-cased, `-` as `_`, joined by `_`
/// (`google-sheets` + `API_KEY` → `GOOGLE_SHEETS_API_KEY`).
public func defaultEnvironmentVariable(plugin: String, key: String) -> String {
    plugin.uppercased().replacingOccurrences(of: "-", with: "_") + "_" + key
}

extension UInt8 {
    @usableFromInline var isLower: Bool { self >= UInt8(ascii: "a") && self <= UInt8(ascii: "z") }
    @usableFromInline var isUpper: Bool { self >= UInt8(ascii: "A") && self <= UInt8(ascii: "Z") }
    @usableFromInline var isLetter: Bool { isLower || isUpper }
    @usableFromInline var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
}

/// Environment variables a secret must never set: `secretc exec` passes
/// secrets to a program as variables, and these change what that program
/// loads, runs, trusts or where it connects — a write-only user's value in
/// `LD_PRELOAD` would run their code beside every deployment-wide secret.
/// Compared without case (`http_proxy` works as well as `HTTP_PROXY`).
public enum ReservedVariable {
    /// Whole names: the shell's, the dynamic loader's, interpreters' start-up
    /// hooks, proxies and certificate stores, editors and pagers, home folders.
    static let names: Set<String> = [
        "PATH", "IFS", "ENV", "BASH_ENV", "PS1", "PS2", "PS4", "PROMPT_COMMAND", "SHELLOPTS", "BASHOPTS", "CDPATH",
        "GLOBIGNORE", "HOME", "SHELL", "USER", "LOGNAME", "TMPDIR", "PERLLIB", "RUBYOPT", "RUBYLIB", "CLASSPATH",
        "GCONV_PATH", "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN", "RES_OPTIONS", "EDITOR", "VISUAL", "PAGER",
        "LESSOPEN", "LESSCLOSE", "SSH_ASKPASS", "SUDO_ASKPASS", "SSH_AUTH_SOCK", "SSL_CERT_FILE", "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "FTP_PROXY",
        "GNUPGHOME", "KRB5CCNAME", "OPENSSL_CONF", "OPENSSL_ENGINES", "SSLKEYLOGFILE", "ZDOTDIR", "INPUTRC",
        "PHPRC", "PHP_INI_SCAN_DIR", "TCLLIBPATH", "R_PROFILE", "R_PROFILE_USER", "R_ENVIRON", "R_ENVIRON_USER",
        "GOTOOLCHAIN", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GONOSUMCHECK", "GOPRIVATE", "GONOPROXY", "GOINSECURE",
        "GOENV", "GOPATH", "GOROOT", "GOEXPERIMENT", "GOCACHE", "GOMODCACHE", "ERL_AFLAGS", "ERL_ZFLAGS", "ERL_LIBS",
        "ELIXIR_ERL_OPTIONS", "KUBECONFIG", "DOCKER_HOST", "DOCKER_CONFIG", "WGETRC", "CURL_HOME", "COMPOSER_HOME",
    ]
    /// Prefixes: loaders, interpreters, tools, and what secretc itself reads.
    static let prefixes = [
        "LD_", "DYLD_", "PYTHON", "PERL5", "NODE_", "NPM_CONFIG_", "RUBY", "GEM_", "BUNDLE_", "JAVA_", "_JAVA_",
        "JDK_JAVA_", "GIT_", "MALLOC_", "BASH_FUNC_", "XDG_", "GPG_", "GNUPG", "SECRETC_", "DOTNET_", "COMPlus_",
        "CORECLR_", "GOFLAGS", "GODEBUG", "RUSTC", "CARGO_", "CGO_", "LUA_", "PIP_",
        "JULIA_", "DENO_", "BUN_",
    ]

    /// Why `name` may not be set by a secret, or nil when it may.
    public static func reason(_ name: String) -> String? {
        let upper = name.uppercased()
        if names.contains(upper) || prefixes.contains(where: { upper.hasPrefix($0.uppercased()) }) {
            return "'\(name)' changes what a program loads, runs, trusts or connects to (or is secretc's own): "
                + "a secret may not set it"
        }
        return nil
    }
}
