// Generates Tests/BundleTests/Vectors/*.txt from the example deployment's
// production bundle and its EXAMPLE-ONLY keys: one file per case, each a
// header (`expect:`, `pinned:`, and for a write a loader contains,
// `unavailable:` the slots it serves nothing for), an empty line, then the
// bundle bytes.
// (version-1.txt, a bundle of the previous format, is kept as it is.)
//
//     swift run secretc-vectors Tests/BundleTests/Vectors
import BundleFormat
import BundleSeal
import Foundation
import GPG

let output = URL(fileURLWithPath: CommandLine.arguments.dropFirst().first ?? "Tests/BundleTests/Vectors")
let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../../examples/gridos").standardizedFileURL

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("secretc-vectors: \(message)\n".utf8))
    exit(1)
}

/// A home holding the named example secret keys.
func home(_ keys: [String]) -> (TemporaryHome, Context) {
    guard let home = try? TemporaryHome(), let context = try? Context(home: home.path) else { fail("no GnuPG home") }
    for key in keys {
        guard let data = FileManager.default.contents(
            atPath: example.appendingPathComponent("example-secret-keys/\(key).EXAMPLE-ONLY.asc").path),
            (try? context.importKeys(Array(data))) != nil
        else { fail("cannot import \(key)") }
    }
    return (home, context)
}

guard let baseBytes = FileManager.default.contents(atPath: example.appendingPathComponent("secrets/production.bundle").path),
      let base = try? SecretBundle(parsing: Array(baseBytes)) else { fail("run examples/gridos/make-bundles first") }
let (adminHome, admin) = home(["ops"])
let (aliceHome, alice) = home(["alice"])
let (publicHome, recipients) = home([])
defer { [adminHome, aliceHome, publicHome].forEach { $0.remove() } }
_ = try? recipients.importKeys(Array(FileManager.default.contents(
    atPath: example.appendingPathComponent("keys/runtime-production.asc").path) ?? Data()))
let ops = base.admins[0]
let aliceFingerprint = base.users["alice"]!

func slot(_ owner: String?, _ plugin: String, _ key: String) -> SlotKey { SlotKey(owner: owner, plugin: plugin, key: key) }
func index(_ bundle: SecretBundle, _ key: SlotKey) -> Int { bundle.slots.firstIndex { $0.slot == key }! }

/// Seals `values` as `writer` on top of `bundle`, like `secretc set` without its checks.
@MainActor func write(
    _ bundle: SecretBundle, _ values: [SlotKey: String?], as writer: String, _ signer: Context, id: String? = nil,
    parents: EpochParents? = nil
) -> SecretBundle {
    var bundle = bundle
    var sealer = EpochSealer(onto: bundle, writer: writer)
    if let parents { sealer.parents = parents }
    guard let dataKey = try? DataKey(encryptor: recipients, recipients: bundle.recipients),
          let (epoch, sealed) = try? sealer.seal(
              values.map { EpochSealer.Change(slot: $0.key, value: $0.value.map { SecureBytes($0) }) },
              afterTime: bundle.epochs.map(\.time).max() ?? 0, dataKey: dataKey, signer: signer, id: id)
    else { fail("sealing failed") }
    bundle.epochs.append(epoch)
    for (key, value) in sealed { bundle.slots[index(bundle, key)].value = value }
    return bundle
}

var cases: [(name: String, expect: String, pinned: String, unavailable: [String], bytes: [UInt8])] = []
@MainActor func add(_ name: String, _ expect: String, _ bytes: [UInt8], pinned: String = ops, unavailable: [String] = []) {
    cases.append((name, expect, pinned, unavailable, bytes))
}

/// `bundle` plus `writer`'s write of `values`, with `change` applied to the
/// epoch and the slots, then signed again by `writer` (a hand-made write
/// whose signature is good: only a key holder can find what is wrong).
@MainActor func handWrite(
    _ bundle: SecretBundle, _ values: [SlotKey: String], as writer: String, _ signer: Context,
    _ change: (inout Epoch, inout [SlotLine]) -> Void
) -> SecretBundle {
    var bundle = write(bundle, values.mapValues { $0 }, as: writer, signer)
    var epoch = bundle.epochs.removeLast()
    change(&epoch, &bundle.slots)
    let payload = epoch.payload(environment: bundle.environment, dataKeyDigest: Digest.sha256Hex(epoch.dataKeyMessage))
    guard let signature = try? signer.signDetached(payload, as: writer) else { fail("cannot sign") }
    epoch.signature = signature
    bundle.epochs.append(epoch)
    return bundle
}
func text(_ bundle: SecretBundle) -> String { String(decoding: bundle.serialized(), as: UTF8.self) }
func edit(_ bundle: SecretBundle, _ change: (inout [String]) -> Void) -> [UInt8] {
    var lines = text(bundle).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    lines.removeLast()
    change(&lines)
    return Array((lines.joined(separator: "\n") + "\n").utf8)
}

let aliceToken = slot("alice", "github", "TOKEN")

/// alice's write of a token whose epoch carries `message` as its data key.
@MainActor func aliceWrite(dataKey message: [UInt8]) -> [UInt8] {
    handWrite(base, [aliceToken: "github_pat_EXAMPLE_alice_rotated_000"], as: aliceFingerprint, alice) { epoch, _ in
        epoch.dataKeyMessage = message
    }.serialized()
}
let daveToken = slot("dave", "github", "TOKEN")
let appID = slot(nil, "github", "APP_ID")

add("valid", "ok", base.serialized())
add("unsupported-version", "invalid bundle: bundle format version 3 is not supported; this secretc reads version 2 (upgrade secretc)",
    edit(base) { $0[0] = "secretc-bundle 3" })
add("truncated", "invalid bundle: line \(text(base).split(separator: "\n").count): the last line is not ended (truncated?)",
    Array(base.serialized().dropLast(7)))
add("duplicate-slot", "invalid bundle: line \(text(base).split(separator: "\n").count + 1): a second line for slot dave/github/TOKEN",
    edit(base) { $0.append($0.last!) })
add("unsorted-slots", "invalid bundle: line \(text(base).split(separator: "\n").count): slot lines must be sorted",
    edit(base) { $0.swapAt($0.count - 1, $0.count - 2) })
add("untrusted-policy", "policy: signed by \(ops), which is not a trusted admin", base.serialized(), pinned: aliceFingerprint)
do {
    var tampered = base
    tampered.slots[index(base, appID)].attributes.inactive = true
    add("policy-covers-metadata", "policy: bad signature (the signed content was changed)", tampered.serialized())
    var relabelled = base
    relabelled.fields[0].help = "Paste your token at https://example.invalid/phish"
    add("policy-covers-fields", "policy: bad signature (the signed content was changed)", relabelled.serialized())
    var malleable = base
    // Zero the issuer key id in the unhashed area: gpg would still accept the signature.
    let signature = base.policy!.signature
    if let at = (0..<(signature.count - 9)).first(where: { signature[$0] == 9 && signature[$0 + 1] == 16 }) {
        malleable.policy!.signature[at + 2] ^= 0xFF
    }
    add("malleable-signature", "policy: the signature is not in canonical form (altered bytes?)", malleable.serialized())
}
do {
    var retimed = base
    retimed.epochs[0].time += 1
    add("bad-epoch-signature", "epoch \(base.epochs[0].id): bad signature (the signed content was changed)", retimed.serialized())
}
do {
    let forged = write(base, [daveToken: "github_pat_alice_writes_dave_000"], as: aliceFingerprint, alice)
    add("unauthorized-writer",
        "epoch \(forged.epochs.last!.id): writer \(aliceFingerprint) may not write slot dave/github/TOKEN", forged.serialized())
}
do {
    var dropped = base
    dropped.slots[index(base, aliceToken)].value = nil
    let epoch = base.epochs.first { $0.claims.contains { $0.slot == aliceToken } }!
    add("dropped-value", "slot alice/github/TOKEN: epoch \(epoch.id) set a value that is missing (dropped?)", dropped.serialized())
}
do {
    let rotated = write(base, [appID: "654321"], as: ops, admin)
    var rolledBack = rotated
    rolledBack.slots[index(base, appID)].value = base.slots[index(base, appID)].value
    add("rolled-back-value",
        "slot -/github/APP_ID: holds a value from epoch \(base.slots[index(base, appID)].value!.epoch), but epoch \(rotated.epochs.last!.id) wrote it later",
        rolledBack.serialized())
}
do {
    // Two values of one epoch swapped: each fails the digest its epoch signed.
    let first = index(base, slot(nil, "github", "APP_ID")), second = index(base, slot(nil, "github", "TOKEN"))
    var swapped = base
    swapped.slots[first].value = base.slots[second].value
    swapped.slots[second].value = base.slots[first].value
    add("swapped-ciphertexts", "slot -/github/APP_ID: its value does not match what epoch \(base.slots[first].value!.epoch) signed",
        swapped.serialized())
}
do {
    // An admin re-signs alice's ciphertext as dave's: claims agree, the AAD does not.
    let value = base.slots[index(base, aliceToken)].value!
    var moved = base
    var epoch = Epoch(time: base.epochs.map(\.time).max()! + 1, id: "0123456789abcdef", writer: ops,
                      policy: base.policyReference!, parents: .after(base.epochs.heads), dataKeyMessage: base.epochs.first { $0.id == value.epoch }!.dataKeyMessage, signature: [],
                      claims: [Claim(slot: daveToken, digest: Digest.sha256(value.bytes))])
    let payload = epoch.payload(environment: base.environment, dataKeyDigest: Digest.sha256Hex(epoch.dataKeyMessage))
    epoch.signature = (try? admin.signDetached(payload, as: ops)) ?? []
    moved.epochs.append(epoch)
    moved.slots[index(base, daveToken)].value = SealedValue(epoch: epoch.id, bytes: value.bytes)
    add("moved-ciphertext", "cannot decrypt: slot dave/github/TOKEN does not authenticate (tampered or moved)", moved.serialized())
}

// History (format 2): epochs chained under signatures, policies serialled.
do {
    // An epoch that a later one builds on, removed (with the values it wrote rolled back).
    var removed = base
    let gone = base.epochs[1]
    removed.epochs.remove(at: 1)
    for claim in gone.claims { removed.slots[index(base, claim.slot)].value = nil }
    add("removed-epoch", "epoch \(base.epochs[2].id): builds on epoch \(gone.id), which is missing (removed or replaced?)",
        removed.serialized())
}
do {
    // An admin's newer policy sets APP_ID inactive and a write follows it; the
    // older policy spliced back over the newer epochs is refused.
    var newer = base
    newer.policySerial = base.policySerial + 1
    newer.previousPolicy = base.policyReference!.id
    newer.slots[index(base, appID)].attributes.inactive = true
    guard (try? PolicySigner.sign(&newer, as: ops, with: admin)) != nil else { fail("signing failed") }
    let written = write(newer, [aliceToken: "github_pat_after_the_new_policy_0"], as: aliceFingerprint, alice)
    var spliced = written
    spliced.policySerial = base.policySerial
    spliced.previousPolicy = base.previousPolicy
    spliced.policy = base.policy
    spliced.slots[index(base, appID)].attributes.inactive = false
    add("old-policy-new-epochs",
        "epoch \(written.epochs.last!.id): written under policy \(newer.policySerial), newer than the bundle's policy "
            + "\(base.policySerial) (an older policy paired with newer epochs)", spliced.serialized())
}
do {
    // A user's epoch dated a day after its signature was made.
    var future = base
    let rest = write(base, [aliceToken: "github_pat_from_the_future_0000"], as: aliceFingerprint, alice)
    var epoch = rest.epochs.last!
    epoch.time += 86_400
    let payload = epoch.payload(environment: base.environment, dataKeyDigest: Digest.sha256Hex(epoch.dataKeyMessage))
    epoch.signature = (try? alice.signDetached(payload, as: aliceFingerprint)) ?? []
    future.epochs.append(epoch)
    future.slots = rest.slots
    add("epoch-time-ahead-of-signature",
        "epoch \(epoch.id): its time \(epoch.time) is later than its signature's creation time \(epoch.time - 86_400)",
        future.serialized())
}
do {
    // Two writes by alice in one second: the second is written after the
    // first (its chain) though its id sorts first; the later value is served.
    let first = write(base, [aliceToken: "github_pat_first_of_one_second0"], as: aliceFingerprint, alice)
    let firstEpoch = first.epochs.last!
    var chained: SecretBundle
    repeat {
        chained = handWrite(first, [aliceToken: "github_pat_second_of_one_second"], as: aliceFingerprint, alice) { epoch, _ in
            epoch.time = firstEpoch.time
        }
    } while chained.epochs.last!.id > firstEpoch.id
    add("same-second-writes", "ok", chained.serialized())
    // The same two epochs in id order: the later one before the one it was written after.
    var lines = text(chained).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let at = lines.firstIndex { $0.hasPrefix("epoch ") && $0.contains(" \(firstEpoch.id) ") }!
    lines.swapAt(at, at + 1)
    add("same-second-writes-in-id-order",
        "invalid bundle: line \(at + 1): epoch lines must be sorted by time, then each after the epochs it names in after=, then id",
        Array(lines.joined(separator: "\n").utf8))
}
do {
    // A write-only user claims to checkpoint (as if re-sealing) to hide what came before.
    var checkpoint = base
    var epoch = write(base, [aliceToken: "github_pat_checkpoint_by_alice_0"], as: aliceFingerprint, alice)
    var last = epoch.epochs.removeLast()
    last.parents = .subsumes(base.epochs.heads)
    let payload = last.payload(environment: base.environment, dataKeyDigest: Digest.sha256Hex(last.dataKeyMessage))
    last.signature = (try? alice.signDetached(payload, as: aliceFingerprint)) ?? []
    checkpoint.epochs.append(last)
    checkpoint.slots = epoch.slots
    add("checkpoint-by-user", "epoch \(last.id): only an admin signs a checkpoint, not \(aliceFingerprint)",
        checkpoint.serialized())
}
do {
    // An admin's checkpoint names an epoch still present in subsumes=; and,
    // after a checkpoint, alice gives a write of hers an id it names, so
    // that the checkpoint would seem to reach what her write builds on
    // (§6a). A re-sealed id is spent: both are refused.
    let appToken = slot(nil, "github", "APP_ID")
    let present = base.epochs[0].id
    let early = write(base, [appToken: "654321"], as: ops, admin, parents: .subsumes([present]))
    add("checkpoint-subsumes-present-epoch",
        "epoch \(present): its id is one that checkpoint \(early.epochs.last!.id) names in subsumes= "
            + "(a re-sealed id is never used again)", early.serialized())
    let spent = "00000000000000aa"
    let checkpoint = write(base, [appToken: "654321"], as: ops, admin, parents: .subsumes([spent]))
    let reused = write(checkpoint, [aliceToken: "github_pat_reused_id_0000000000"], as: aliceFingerprint, alice, id: spent)
    add("epoch-id-subsumed",
        "epoch \(spent): its id is one that checkpoint \(checkpoint.epochs.last!.id) names in subsumes= "
            + "(a re-sealed id is never used again)", reused.serialized())
}
add("time-beyond-year-9999", "invalid bundle: line \(text(base).split(separator: "\n").firstIndex { $0.hasPrefix("epoch ") }! + 1): "
    + "'9223372036854775807' is not a time (seconds since 1970, at most \(SecretBundle.latestTime))",
    edit(base) { lines in
        let at = lines.firstIndex { $0.hasPrefix("epoch ") }!
        var fields = lines[at].split(separator: " ").map(String.init)
        fields[1] = "9223372036854775807"
        lines[at] = fields.joined(separator: " ")
    })

// Fail small (§6, step 7): a user's write that only a key holder can find
// unusable costs that user's slots; the same failure in an admin's write
// refuses the bundle.
do {
    let (strangerHome, stranger) = home([])
    defer { strangerHome.remove() }
    guard let strangerKey = try? stranger.generateKey(userID: "stranger <stranger@example.invalid>"),
          let strangerDataKey = try? stranger.encrypt([UInt8](repeating: 7, count: 32), to: [strangerKey.fingerprint])
    else { fail("cannot make a stranger's data key") }
    add("user-data-key-for-a-stranger", "ok",
        aliceWrite(dataKey: strangerDataKey), unavailable: ["alice/github/TOKEN"])
    add("user-value-fails-aes-gcm", "ok",
        handWrite(base, [aliceToken: "github_pat_EXAMPLE_alice_rotated_000"], as: aliceFingerprint, alice) { epoch, slots in
            let at = slots.firstIndex { $0.slot == aliceToken }!
            slots[at].value!.bytes[slots[at].value!.bytes.count - 1] ^= 1
            let claim = epoch.claims.firstIndex { $0.slot == aliceToken }!
            epoch.claims[claim].digest = Digest.sha256(slots[at].value!.bytes)
        }.serialized(), unavailable: ["alice/github/TOKEN"])
    add("user-value-fails-pattern", "ok",
        write(base, [aliceToken: "github_pat_EXAMPLE_alice_rotated_000\nevil"], as: aliceFingerprint, alice).serialized(),
        unavailable: ["alice/github/TOKEN"])
    // A data key whose payload is itself a passphrase-encrypted message: gpg
    // would ask the runtime for a passphrase; only alice's slot is lost.
    guard let symmetricHome = try? TemporaryHome(), let nestedKey = try? { () throws -> [UInt8] in
        defer { symmetricHome.remove() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gpg", "--homedir", symmetricHome.path, "--batch", "--pinentry-mode", "loopback",
                             "--passphrase", "p", "--symmetric", "--output", "-"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        input.fileHandleForWriting.write(Data(repeating: 7, count: 32))
        try input.fileHandleForWriting.close()
        let bytes = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Array(bytes)
    }(), !nestedKey.isEmpty else { fail("cannot make a passphrase-encrypted message") }
    let runtimeData = Array(FileManager.default.contents(
        atPath: example.appendingPathComponent("keys/runtime-production.asc").path) ?? Data())
    guard let runtimeInfo = try? recipients.keys(in: runtimeData).first, let runtimeSubkey = runtimeInfo.encryptionSubkey,
          let runtimeRecipient = Cv25519Recipient(keyData: runtimeData, subkey: runtimeSubkey),
          let nested = try? Cv25519Encryptor(recipients: [:]).encrypt(payload: nestedKey, to: [runtimeRecipient])
    else { fail("cannot encrypt to the runtime key") }
    add("user-data-key-asks-for-a-passphrase", "ok",
        aliceWrite(dataKey: nested), unavailable: ["alice/github/TOKEN"])
    // A value with a NUL byte, which no variable can hold: what follows it
    // would otherwise read as another variable (`LD_PRELOAD=…`).
    add("user-value-holds-nul", "ok",
        write(base, [aliceToken: "github_pat_EXAMPLE_alice_rotated_000\u{0}LD_PRELOAD=/tmp/evil.so"],
              as: aliceFingerprint, alice).serialized(),
        unavailable: ["alice/github/TOKEN"])
    // A literal packet: 32 bytes in clear where session keys belong.
    let literal: [UInt8] = [0xCB, 38, UInt8(ascii: "b"), 0, 0, 0, 0, 0] + [UInt8](repeating: 7, count: 32)
    add("user-data-key-not-session-keys", "ok",
        aliceWrite(dataKey: literal), unavailable: ["alice/github/TOKEN"])
    let adminWrite = handWrite(base, [appID: "654321"], as: ops, admin) { epoch, _ in epoch.dataKeyMessage = strangerDataKey }
    add("admin-data-key-for-a-stranger",
        "cannot decrypt: epoch \(adminWrite.epochs.last!.id), signed by an admin: cannot decrypt: "
            + "epoch \(adminWrite.epochs.last!.id): its data key is encrypted to key id "
            + "\((try? DataKeyEnvelope(parsing: strangerDataKey))?.recipientKeyIDs.first ?? ""), which is no recipient's",
        adminWrite.serialized())
}

// Recipients (§6, step 3 and the packet rule): every recipient has a key
// line, and every data key goes to exactly the recipients — judged by
// loaders as by `check`, without any secret key.
do {
    let runtime = base.recipients[0]
    let stagingData = Array(FileManager.default.contents(
        atPath: example.appendingPathComponent("keys/runtime-staging.asc").path) ?? Data())
    guard let stagingKey = try? KeyFile.binary(from: stagingData),
          let staging = try? KeyFile(scanning: stagingKey).fingerprints.first
    else { fail("cannot read the staging runtime key") }
    func resigned(_ change: (inout SecretBundle) -> Void) -> SecretBundle {
        var bundle = base
        change(&bundle)
        guard (try? PolicySigner.signAnew(&bundle, as: ops, with: admin)) != nil else { fail("signing failed") }
        return bundle
    }
    add("recipient-without-key-line",
        "policy: recipient \(runtime) has no key line, so no reader can tell whom a data key is encrypted to "
            + "(an admin re-signs the policy with `secretc compile`; no secret key is needed)",
        resigned { $0.keys[runtime] = nil }.serialized())
    // An admin adds a recipient, or replaces the only one by another
    // environment's key, re-signing without re-sealing: the admin's own
    // epochs no longer go to exactly the recipients, so the bundle is refused.
    let firstAdminEpoch = base.epochs.first { $0.writer == ops }!.id
    let added = resigned { bundle in
        bundle.recipients = [runtime, staging].sorted()
        bundle.keys[staging] = stagingKey
    }
    add("recipient-added-without-reseal",
        "cannot decrypt: epoch \(firstAdminEpoch), signed by an admin: cannot decrypt: epoch \(firstAdminEpoch): "
            + "its data key is not encrypted to recipient \(staging)", added.serialized())
    let runtimeSubkeyID = (try? DataKeyEnvelope(parsing: base.epochs[0].dataKeyMessage))?.recipientKeyIDs.first ?? ""
    let replaced = resigned { bundle in
        bundle.recipients = [staging]
        bundle.keys[runtime] = nil
        bundle.keys[staging] = stagingKey
    }
    // (No data key goes to the recipient: the first failure is reported.)
    add("recipient-replaced-by-another-environments-key",
        "cannot decrypt: epoch \(firstAdminEpoch): "
            + "its data key is encrypted to key id \(runtimeSubkeyID), which is no recipient's", replaced.serialized())

    // alice's write whose data key (the real one) also goes to a stranger,
    // or hides its recipient's key id: her value is unavailable, nothing else.
    struct Encryptor: DataKeyEncryptor {
        var arguments: [String]
        func encrypt(_ plaintext: UnsafeRawBufferPointer, to recipients: [String]) throws -> [UInt8] {
            let home = try TemporaryHome()
            defer { home.remove() }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["gpg", "--homedir", home.path, "--batch", "--quiet", "--trust-model", "always"] + arguments
            let input = Pipe(), output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            input.fileHandleForWriting.write(Data(plaintext))
            try input.fileHandleForWriting.close()
            let bytes = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return Array(bytes)
        }
    }
    let (strangerHome, stranger) = home([])
    defer { strangerHome.remove() }
    guard let strangerKey = try? stranger.generateKey(userID: "stranger <stranger@example.invalid>"),
          let strangerPublic = try? stranger.exportPublicKey(strangerKey.fingerprint)
    else { fail("cannot make a stranger's key") }
    let folder = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("vectors-\(getpid())")
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let strangerFile = folder.appendingPathComponent("stranger.asc")
    guard FileManager.default.createFile(atPath: strangerFile.path, contents: Data(strangerPublic.utf8)) else {
        fail("cannot write the stranger's key")
    }
    let runtimeFile = example.appendingPathComponent("keys/runtime-production.asc").path
    func aliceWrite(through encryptor: Encryptor) -> [UInt8] {
        var bundle = base
        guard let dataKey = try? DataKey(encryptor: encryptor, recipients: [runtime]),
              let (epoch, sealed) = try? EpochSealer(onto: bundle, writer: aliceFingerprint).seal(
                  [EpochSealer.Change(slot: aliceToken, value: SecureBytes("github_pat_EXAMPLE_alice_rotated_000"))],
                  afterTime: bundle.epochs.map(\.time).max() ?? 0, dataKey: dataKey, signer: alice)
        else { fail("sealing failed") }
        bundle.epochs.append(epoch)
        for (key, value) in sealed { bundle.slots[index(bundle, key)].value = value }
        return bundle.serialized()
    }
    add("user-data-key-also-for-a-stranger", "ok",
        aliceWrite(through: Encryptor(arguments: [
            "--recipient-file", runtimeFile, "--recipient-file", strangerFile.path, "--encrypt", "--output", "-",
        ])), unavailable: ["alice/github/TOKEN"])
    add("user-data-key-hidden-recipient", "ok",
        aliceWrite(through: Encryptor(arguments: ["--hidden-recipient-file", runtimeFile, "--encrypt", "--output", "-"])),
        unavailable: ["alice/github/TOKEN"])
}

// Rules a reader written from the spec had to guess (issue 27, finding 10).
do {
    func lineNumber(_ bytes: [UInt8], of prefix: String) -> Int {
        String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex { $0.hasPrefix(prefix) }! + 1
    }
    func resigned(_ change: (inout SecretBundle) -> Void) -> SecretBundle {
        var bundle = base
        change(&bundle)
        guard (try? PolicySigner.signAnew(&bundle, as: ops, with: admin)) != nil else { fail("signing failed") }
        return bundle
    }
    // A key line followed by a trust packet (tag 12), which gpg would skip.
    add("key-line-with-trust-packet", "the key listed as \(aliceFingerprint) is not that key",
        resigned { $0.keys[aliceFingerprint]! += [0xB0, 0x02, 0x00, 0x00] }.serialized())
    // A scope listed twice.
    let webhook = slot("bob", "stripe", "WEBHOOK_SECRET")
    let twice = resigned { $0.slots[index($0, webhook)].attributes.scopes = ["webhooks", "webhooks"] }.serialized()
    add("duplicate-scope",
        "invalid bundle: line \(lineNumber(twice, of: "slot bob stripe WEBHOOK_SECRET ")): scope 'webhooks' is listed twice",
        twice)
    // Two variables for one plugin key: `exec` would export alice's token
    // under the deployment-wide slot's name.
    let aliceGitHub = resigned { $0.slots[index($0, aliceToken)].attributes.env = "ALICE_GITHUB_TOKEN" }.serialized()
    add("plugin-key-with-two-variables",
        "invalid bundle: line \(lineNumber(aliceGitHub, of: "slot alice github TOKEN ")): a slot of github TOKEN has "
            + "env=ALICE_GITHUB_TOKEN, but other slots of it have env=GITHUB_TOKEN (one variable per plugin key)",
        aliceGitHub)
    // erin's key expired two days ago (it lived one day); she signs a write
    // dated back to when it was valid, after the bundle's newest write,
    // whose time it inherits. Her key is judged at the time of that write.
    let head = base.epochs.last!
    guard let headSigned = try? admin.verifyDetached(
        signature: head.signature,
        data: head.payload(environment: base.environment, dataKeyDigest: Digest.sha256Hex(head.dataKeyMessage))).first?.timestamp
    else { fail("cannot read the head's signature time") }
    let (erinHome, erin) = home([])
    defer { erinHome.remove() }
    let born = headSigned - 3 * 86_400
    func gpg(_ arguments: [String], input: [UInt8] = []) -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gpg", "--homedir", erinHome.path, "--batch", "--passphrase", ""] + arguments
        let (stdin, stdout) = (Pipe(), Pipe())
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { fail("cannot run gpg") }
        stdin.fileHandleForWriting.write(Data(input))
        try? stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Array(output)
    }
    _ = gpg(["--faked-system-time", "\(born)!", "--quick-gen-key", "erin <erin@example.invalid>", "ed25519", "sign,cert", "1d"])
    guard let erinKey = try? erin.keys(in: gpg(["--export", "erin@example.invalid"])).first else { fail("no key for erin") }
    let erinToken = slot("erin", "github", "TOKEN")
    let withErin = resigned { bundle in
        bundle.users["erin"] = erinKey.fingerprint
        bundle.keys[erinKey.fingerprint] = gpg(["--export-options", "export-minimal", "--export", erinKey.fingerprint])
        bundle.slots.append(SlotLine(slot: erinToken, value: nil, attributes: SlotAttributes(env: "GITHUB_TOKEN")))
        bundle.slots.sort { $0.slot < $1.slot }
    }
    let rest = write(withErin, [erinToken: "github_pat_EXAMPLE_erin_backdated_00"], as: aliceFingerprint, alice)
    var backdated = rest.epochs.last!
    backdated.writer = erinKey.fingerprint
    backdated.time = head.time
    let payload = backdated.payload(environment: base.environment, dataKeyDigest: Digest.sha256Hex(backdated.dataKeyMessage))
    backdated.signature = gpg(
        ["--faked-system-time", "\(born + 3600)!", "--local-user", erinKey.fingerprint, "--detach-sign", "--output", "-"],
        input: payload)
    var withBackdated = withErin
    withBackdated.epochs.append(backdated)
    withBackdated.slots = rest.slots
    add("expired-key-signs-a-write-dated-back",
        "epoch \(backdated.id): signed by a key that expired at \(born + 86_400), before epoch \(head.id) it builds on "
            + "was signed (\(headSigned)): a signature dated back to when the key was valid does not count",
        withBackdated.serialized())
}

try? FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
for vector in cases {
    var header = "expect: \(vector.expect)\npinned: \(vector.pinned)\n"
    if !vector.unavailable.isEmpty { header += "unavailable: \(vector.unavailable.joined(separator: ", "))\n" }
    var file = Array((header + "\n").utf8)
    file += vector.bytes
    guard FileManager.default.createFile(atPath: output.appendingPathComponent("\(vector.name).txt").path, contents: Data(file))
    else { fail("cannot write \(vector.name).txt") }
}
print("wrote \(cases.count) vectors to \(output.path)")
