import BundleFormat
import BundleSeal
import Crypto
import Foundation
import GPG
import SecretCompiler
import SecretModel

/// A generated project whose production bundle holds N slots, every one
/// filled by one admin epoch, plus a GnuPG home with the example's
/// EXAMPLE-ONLY admin and runtime keys (exported as `GNUPGHOME`).
///
/// The filled bundle is kept as `production.pristine-v3` in the cache, so later
/// runs start from the same one-epoch bundle without sealing it again.
struct LargeBundle {
    let config: URL
    let project: Project
    let compiler: Compiler
    let home: TemporaryHome
    let context: Context
    /// The runtime key's home alone, for loaders.
    let runtimeHome: TemporaryHome
    /// Seconds it took to fill every slot, when this run had to.
    let fillSeconds: Double?

    var bundle: URL { compiler.file.url }
    var admin: String { project.keys["ops"]!.info.fingerprint }

    /// - Parameter epochs: how many writes filled the slots: 1, one admin
    ///   epoch; N, consecutive runs of slots each written by an epoch of its
    ///   own (a history of N writes, as a team's `set`s leave it).
    static func prepare(slots: Int, epochs: Int = 1, cache: String) throws -> LargeBundle {
        let users = max(1, slots / 5)
        // v3: a distinct value per slot, recipients' keys in the policy.
        let root = URL(fileURLWithPath: cache).appendingPathComponent("set-v3-\(slots)" + (epochs > 1 ? "-e\(epochs)" : ""))
        let config = root.appendingPathComponent("secretc.yaml")
        // v3 of the bundle: data keys encrypted as compile does (in process, uncompressed).
        let pristine = root.appendingPathComponent("production.pristine-v3")
        if !FileManager.default.fileExists(atPath: config.path) {
            print("generating \(users) users × 5 slots in one environment in \(root.path) …")
            try GenerateProject.generate(at: root, users: users, keyedUsers: 0, environments: 1)
        }
        let home = try TemporaryHome()
        let context = try Context(home: home.path)
        let runtimeHome = try TemporaryHome()
        for key in ["ops", "runtime-production"] {
            let armored = Array(try Data(contentsOf: exampleSecretKey(key)))
            try context.importKeys(armored)
            if key == "runtime-production" { try Context(home: runtimeHome.path).importKeys(armored) }
        }
        setenv("GNUPGHOME", home.path, 1)

        let validation = ProjectValidator.load(config: config)
        guard let project = validation.project, !validation.log.hasErrors else { throw BenchFailure("project fails check") }
        let compiler = try Compiler(project: project, environment: "production", home: home.path)
        try? FileManager.default.removeItem(at: compiler.file.url)
        var fill: Double?
        if FileManager.default.fileExists(atPath: pristine.path) {
            try FileManager.default.copyItem(at: pristine, to: compiler.file.url)
        } else {
            _ = try compiler.compile(as: "ops")
            fill = try Clock.time {
                if epochs > 1 { try fillSlots(compiler, context, epochs: epochs) } else { try fillAllSlots(compiler, context) }
            }
            try FileManager.default.copyItem(at: compiler.file.url, to: pristine)
        }
        return LargeBundle(
            config: config, project: project, compiler: compiler, home: home, context: context, runtimeHome: runtimeHome,
            fillSeconds: fill)
    }

    func remove() {
        home.remove()
        runtimeHome.remove()
    }

    static func exampleSecretKey(_ name: String) -> URL {
        GenerateProject.exampleRoot.appendingPathComponent("example-secret-keys/\(name).EXAMPLE-ONLY.asc")
    }

    /// Seals a value into every declared slot, as one admin epoch, its data
    /// key encrypted in process as `compile` does for Curve25519 recipients
    /// (gpg would compress it, which readers leave to gpg).
    private static func fillAllSlots(_ compiler: Compiler, _ context: Context) throws {
        guard var bundle = try compiler.file.load() else { throw BenchFailure("no bundle") }
        let encryptor = try runtimeEncryptor()
        let changes = bundle.slots.map { line -> EpochSealer.Change in
            EpochSealer.Change(slot: line.slot, value: SecureBytes(sampleValue(line.slot)))
        }
        let (epoch, sealed) = try EpochSealer(onto: bundle, writer: bundle.admins[0])
            .seal(changes, after: bundle.epochs, encryptor: encryptor, signer: context)
        bundle.epochs.append(epoch)
        for index in bundle.slots.indices { bundle.slots[index].value = sealed[bundle.slots[index].slot] ?? nil }
        try compiler.file.replace(with: bundle.serialized())
    }

    /// Seals a value into every declared slot, the slots cut into `epochs`
    /// consecutive runs, each its own epoch after the one before, dated one
    /// second apart and ending now. The data keys are encrypted in process
    /// (as `set` does for Curve25519 recipients); gpg signs each epoch.
    private static func fillSlots(_ compiler: Compiler, _ context: Context, epochs: Int) throws {
        guard var bundle = try compiler.file.load() else { throw BenchFailure("no bundle") }
        let encryptor = try runtimeEncryptor()
        let admin = bundle.admins[0]
        let start = Date().addingTimeInterval(-Double(epochs))
        var parents = bundle.epochs.heads
        var values: [SlotKey: SealedValue] = [:]
        let slots = bundle.slots.map(\.slot)
        for index in 0..<epochs {
            let run = slots[(slots.count * index / epochs)..<(slots.count * (index + 1) / epochs)]
            let changes = run.map { EpochSealer.Change(slot: $0, value: SecureBytes(sampleValue($0))) }
            let sealer = EpochSealer(
                environment: bundle.environment, writer: admin, recipients: bundle.recipients,
                policy: bundle.policyReference ?? PolicyReference(serial: bundle.policySerial, id: ""), parents: .after(parents))
            let (epoch, sealed) = try sealer.seal(
                changes, afterTime: bundle.epochs.last?.time ?? 0, now: start.addingTimeInterval(Double(index)),
                encryptor: encryptor, signer: context)
            bundle.epochs.append(epoch)
            parents = [epoch.id]
            for (slot, value) in sealed { values[slot] = value ?? nil }
            if index % 1000 == 999 { print("  \(index + 1) of \(epochs) epochs sealed") }
        }
        for index in bundle.slots.indices { bundle.slots[index].value = values[bundle.slots[index].slot] }
        try compiler.file.replace(with: bundle.serialized())
    }

    /// Encrypts data keys to the example's runtime key in process.
    private static func runtimeEncryptor() throws -> Cv25519Encryptor {
        let keyData = Array(try Data(contentsOf: GenerateProject.exampleRoot.appendingPathComponent("keys/runtime-production.asc")))
        let lister = try TemporaryHome()
        defer { lister.remove() }
        guard let info = try Context(home: lister.path).keys(in: keyData).first, let subkey = info.encryptionSubkey,
              let recipient = Cv25519Recipient(keyData: keyData, subkey: subkey)
        else { throw BenchFailure("the example's runtime key is not a Curve25519 key") }
        return Cv25519Encryptor(recipients: [info.fingerprint: recipient])
    }

    /// A fake value of a realistic length that fits the key's manifest
    /// pattern, different for every slot (as real secrets are: the GPG floor
    /// must not profit from compressing repeated values).
    static func sampleValue(_ slot: SlotKey) -> String {
        let digest = SHA256.hash(data: Array(slot.description.utf8))
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        let high: [Character] = digest.map { alphabet[Int($0) % alphabet.count] }
        let low: [Character] = digest.map { alphabet[Int($0 / 4) % alphabet.count] }
        let noise = high + low
        func random(_ count: Int) -> String { String(noise.prefix(count)) }
        switch slot.key {
        case "STORE_DOMAIN": return random(12).lowercased() + ".myshopify.com"
        case "ADMIN_TOKEN": return "shpat_" + random(32)
        case "SECRET_KEY": return "sk_live_" + random(24)
        case "WEBHOOK_SECRET": return "whsec_" + random(32)
        case "APP_ID":
            let bytes = Array(digest)
            let number = 100_000 + Int(bytes[0]) * 1_000 + Int(bytes[1])
            return String(number)
        default: return "ghp_" + random(36)
        }
    }
}
