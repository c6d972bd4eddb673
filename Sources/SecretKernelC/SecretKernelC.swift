import Foundation
import GPG
import Logging
@_spi(Bindings) import SecretKernel

// A C ABI over SecretKernel, for other languages (the Python package in
// python/ loads it with ctypes). There is one verifier: this calls the same
// SecretKernel a Swift service uses. Conventions:
//
// * A kernel is an opaque handle from `secretc_kernel_open`, released by
//   `secretc_kernel_close`; every other call may run on any thread at once.
// * Strings in are NUL-terminated UTF-8 (the lookup's names: lengths, no
//   terminator); a NULL user means deployment-wide.
// * A value comes out once, in memory from `malloc` that the caller releases
//   with `secretc_free_value`, which zeroes it first. Messages and JSON come
//   out as `malloc`ed strings released with `secretc_free_string`; they
//   never hold a value.
// * Results: 0 success, 1 "no value" / refused (details in the out string),
//   -1 a misuse (a NULL handle or argument).

/// The kernel behind a handle (borrowed: the handle keeps it alive).
private func kernel(_ handle: UnsafeRawPointer?) -> SecretKernel? {
    handle.map { Unmanaged<SecretKernel>.fromOpaque($0).takeUnretainedValue() }
}

private func string(_ pointer: UnsafePointer<CChar>?) -> String? {
    pointer.map { String(cString: $0) }
}

/// `text` in `malloc`ed memory, for a `char **` out parameter.
private func give(_ text: String, to out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) {
    guard let out else { return }
    out.pointee = strdup(text)
}

private func json(_ object: Any) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}

/// The value's bytes in fresh `malloc`ed memory (at least one byte, so a
/// pointer is always returned for a found value).
private func give(_ bytes: UnsafeRawBufferPointer, _ value: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>,
                  _ length: UnsafeMutablePointer<Int>) {
    let copy = malloc(max(bytes.count, 1))!.bindMemory(to: UInt8.self, capacity: max(bytes.count, 1))
    if let base = bytes.baseAddress, bytes.count > 0 { memcpy(copy, base, bytes.count) }
    value.pointee = copy
    length.pointee = bytes.count
}

private func reasonName(_ reason: SecretUnavailable.Reason) -> (String, [String: Any]) {
    switch reason {
    case .notSet: return ("not_set", [:])
    case .expired(let date): return ("expired", ["expires": date.formatted(.iso8601)])
    case .inactive: return ("inactive", [:])
    case .outOfScope(let scope): return ("out_of_scope", ["scope": scope])
    case .unavailable: return ("unavailable", [:])
    case .undeclared: return ("undeclared", [:])
    }
}

private func describe(_ error: SecretUnavailable) -> String {
    let (reason, extra) = reasonName(error.reason)
    var object: [String: Any] = [
        "reason": reason, "message": error.description, "plugin": error.plugin, "key": error.key,
        "environment_variable": error.environmentVariable, "user": error.user ?? NSNull(),
    ]
    object.merge(extra) { $1 }
    return json(object)
}

private func describe(_ error: SecretKernelError) -> String {
    // verificationFailed → verification_failed, as Python names things.
    let kind = "\(error.kind)".reduce(into: "") { name, character in
        if character.isUppercase { name += "_" + character.lowercased() } else { name.append(character) }
    }
    return json(["kind": kind, "message": error.message])
}

/// Opens and verifies a bundle. `configuration` is a JSON object:
/// `bundle` (a path, required), `trusted_admins` (fingerprints, required),
/// `environment` (the expected environment), `scope`, `trusted_state` (a
/// path), `gnupghome`, `fallback_environment` (an object of variables; absent:
/// the process environment), `protect_process` (default true). The runtime
/// key: `key` bytes (an armored secret key) with `passphrase`, else
/// `gnupghome`, else the process environment's SECRETC_GPG_KEY or GNUPGHOME.
/// - Returns: a handle, or NULL with a JSON error (`kind`, `message`) in `error`.
@_cdecl("secretc_kernel_open")
public func secretc_kernel_open(
    _ configuration: UnsafePointer<CChar>?, _ key: UnsafePointer<UInt8>?, _ keyLength: Int,
    _ passphrase: UnsafePointer<CChar>?, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> UnsafeMutableRawPointer? {
    guard let text = string(configuration),
          let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
          let bundle = object["bundle"] as? String
    else {
        give(json(["kind": "misconfigured", "message": "the configuration is not a JSON object with a 'bundle' path"]), to: error)
        return nil
    }
    let pins: Set<String>
    do {
        let listed = (object["trusted_admins"] as? [String]) ?? []
        pins = try SecretKernel.Configuration.trustedAdmins(from: listed.joined(separator: ","))
    } catch let failure {
        give(describe(failure), to: error)
        return nil
    }
    // The environment this service runs in is required: without it a
    // staging bundle copied over the production one would be served.
    guard let environment = object["environment"] as? String, !environment.isEmpty else {
        give(describe(SecretKernelError(
            .misconfigured, "no environment given: name the deployment environment this service runs in (e.g. production)")),
             to: error)
        return nil
    }
    let keys: SecretKernel.KeySource
    if let key, keyLength > 0 {
        keys = .armoredSecretKey(
            SecureBytes(Array(UnsafeBufferPointer(start: key, count: keyLength))), passphrase: string(passphrase))
    } else if let home = object["gnupghome"] as? String {
        keys = .gnupgHome(home)
    } else {
        keys = .automatic
    }
    var settings = SecretKernel.Configuration(
        bundle: .path(bundle), keys: keys, trustedAdmins: pins, expectedEnvironment: environment,
        scope: object["scope"] as? String, logger: Logger(label: "secretc.kernel") { _ in StandardErrorLines() },
        trustedState: object["trusted_state"] as? String)
    if let fallback = object["fallback_environment"] as? [String: String] { settings.fallbackEnvironment = fallback }
    if let protects = object["protect_process"] as? Bool { settings.protectsProcess = protects }
    do {
        return Unmanaged.passRetained(try SecretKernel(settings)).toOpaque()
    } catch let failure {
        give(describe(failure), to: error)
        return nil
    }
}

@_cdecl("secretc_kernel_close")
public func secretc_kernel_close(_ handle: UnsafeMutableRawPointer?) {
    guard let handle else { return }
    Unmanaged<SecretKernel>.fromOpaque(handle).release()
}

/// `getSecret`: 0 with the value, or 1 when there is none (an undeclared
/// name is logged once as a warning on standard error).
@_cdecl("secretc_kernel_get")
public func secretc_kernel_get(
    _ handle: UnsafeRawPointer?, _ plugin: UnsafePointer<CChar>?, _ key: UnsafePointer<CChar>?,
    _ user: UnsafePointer<CChar>?, _ value: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
    _ length: UnsafeMutablePointer<Int>?
) -> Int32 {
    guard let kernel = kernel(handle), let plugin = string(plugin), let key = string(key), let value, let length else { return -1 }
    let found = kernel.withSecretBytes(plugin: plugin, key: key, for: SecretOwner(user: string(user))) {
        give($0, value, length)
        return 0
    }
    return found == nil ? 1 : 0
}

/// `getSecret` in one call, for callers for whom a call costs more than a
/// copy (Python's ctypes). `names` holds the plugin, the key and the user
/// one after another, with no separator: their lengths say where each ends
/// (a name may hold any byte, and one name never runs into the next); a
/// negative `userLength` means deployment-wide. The value crosses once,
/// straight into `buffer`, whose first `capacity` bytes are zeroed first so
/// no earlier value is left there. Returns the value's length when it fit,
/// -1 when there is no value (or a malformed request), or -2 minus the
/// length needed when it did not fit (nothing written).
@_cdecl("secretc_kernel_lookup")
public func secretc_kernel_lookup(
    _ handle: UnsafeRawPointer?, _ names: UnsafePointer<UInt8>?, _ pluginLength: Int32, _ keyLength: Int32,
    _ userLength: Int32, _ buffer: UnsafeMutableRawPointer?, _ capacity: Int32
) -> Int {
    // Lengths are C ints: what ctypes passes a Python int as without argtypes.
    guard let kernel = kernel(handle), let names, pluginLength >= 0, keyLength >= 0, let buffer, capacity >= 0 else {
        return -1
    }
    let capacity = Int(capacity)
    let pluginEnd = Int(pluginLength), keyEnd = pluginEnd + Int(keyLength)
    let plugin = String(decoding: UnsafeBufferPointer(start: names, count: pluginEnd), as: UTF8.self)
    let key = String(decoding: UnsafeBufferPointer(start: names + pluginEnd, count: Int(keyLength)), as: UTF8.self)
    let owner: SecretOwner =
        userLength < 0
        ? .deployment : .user(String(decoding: UnsafeBufferPointer(start: names + keyEnd, count: Int(userLength)), as: UTF8.self))
    wipe(UnsafeMutableRawBufferPointer(start: buffer, count: capacity))
    return kernel.withSecretBytes(plugin: plugin, key: key, for: owner) { value in
        guard value.count <= capacity else { return -2 - value.count }
        if let base = value.baseAddress, value.count > 0 { memcpy(buffer, base, value.count) }
        return value.count
    } ?? -1
}

/// `secret`: 0 with the value and its source (`user slot (alice)`, …) in
/// `detail`, or 1 with why not as JSON (`reason`: not_set, expired, inactive,
/// out_of_scope, unavailable, undeclared; `message`; …) in `detail`.
@_cdecl("secretc_kernel_secret")
public func secretc_kernel_secret(
    _ handle: UnsafeRawPointer?, _ plugin: UnsafePointer<CChar>?, _ key: UnsafePointer<CChar>?,
    _ user: UnsafePointer<CChar>?, _ value: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
    _ length: UnsafeMutablePointer<Int>?, _ detail: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> Int32 {
    guard let kernel = kernel(handle), let plugin = string(plugin), let key = string(key), let value, let length else { return -1 }
    do {
        let secret = try kernel.secret(plugin: plugin, key: key, for: SecretOwner(user: string(user)))
        var text = secret.value
        text.withUTF8 { give(UnsafeRawBufferPointer($0), value, length) }
        give("\(secret.source)", to: detail)
        return 0
    } catch {
        give(describe(error), to: detail)
        return 1
    }
}

/// The seeds' status JSON for `plugin` and `user` (0), or an undeclared
/// plugin's error JSON (1), in `out`.
@_cdecl("secretc_kernel_status")
public func secretc_kernel_status(
    _ handle: UnsafeRawPointer?, _ plugin: UnsafePointer<CChar>?, _ user: UnsafePointer<CChar>?,
    _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> Int32 {
    guard let kernel = kernel(handle), let plugin = string(plugin) else { return -1 }
    do {
        let status = try kernel.status(plugin: plugin, for: SecretOwner(user: string(user)))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        give(String(decoding: (try? encoder.encode(status)) ?? Data("{}".utf8), as: UTF8.self), to: out)
        return 0
    } catch {
        give(describe(error), to: out)
        return 1
    }
}

/// Every served value, as entries of: the name's length (4 bytes, little
/// endian), the name, the value's length (likewise), the value — lengths,
/// never separators. In memory released (and zeroed) with `secretc_free_value`.
@_cdecl("secretc_kernel_environment")
public func secretc_kernel_environment(
    _ handle: UnsafeRawPointer?, _ user: UnsafePointer<CChar>?,
    _ value: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?, _ length: UnsafeMutablePointer<Int>?
) -> Int32 {
    guard let kernel = kernel(handle), let value, let length else { return -1 }
    var block: [UInt8] = []
    func append(_ bytes: String.UTF8View) {
        let count = UInt32(bytes.count)
        block += [UInt8(count & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count >> 16 & 0xFF), UInt8(count >> 24)]
        block += bytes
    }
    for (name, text) in kernel.environmentVariables(for: SecretOwner(user: string(user))).sorted(by: { $0.key < $1.key }) {
        append(name.utf8)
        append(text.utf8)
    }
    block.withUnsafeBytes { give($0, value, length) }
    block.withUnsafeMutableBytes(wipe)
    return 0
}

/// Reloads the bundle: 0, or 1 with the error JSON in `error` (the bundle in
/// service stays).
@_cdecl("secretc_kernel_reload")
public func secretc_kernel_reload(
    _ handle: UnsafeRawPointer?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> Int32 {
    guard let kernel = kernel(handle) else { return -1 }
    do {
        try kernel.reload()
        return 0
    } catch {
        give(describe(error), to: out)
        return 1
    }
}

/// What is loaded, as JSON (never a value).
@_cdecl("secretc_kernel_info")
public func secretc_kernel_info(_ handle: UnsafeRawPointer?) -> UnsafeMutablePointer<CChar>? {
    guard let kernel = kernel(handle) else { return nil }
    let info = kernel.info
    return strdup(json([
        "environment": info.environment, "slots": info.slots, "values": info.values, "epochs": info.epochs,
        "unavailable": info.unavailable, "digest": info.digest, "loaded_at": info.loadedAt.formatted(.iso8601),
        "reloads": info.reloads, "reload_failures": info.reloadFailures,
    ]))
}

@_cdecl("secretc_free_value")
public func secretc_free_value(_ value: UnsafeMutablePointer<UInt8>?, _ length: Int) {
    guard let value else { return }
    wipe(UnsafeMutableRawBufferPointer(start: value, count: length))
    free(value)
}

@_cdecl("secretc_free_string")
public func secretc_free_string(_ text: UnsafeMutablePointer<CChar>?) {
    free(text)
}
