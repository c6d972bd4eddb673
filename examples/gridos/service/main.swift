// gridos-service: a tiny stand-in for the spreadsheet service. It boots a
// SecretKernel on an environment's bundle, serves the settings endpoint's
// answer, and evaluates a few connector formulas for different users —
// printing which source served each secret, never a value.
//
//     SECRETC_TRUSTED_ADMINS=<admin fingerprint> GNUPGHOME=<runtime key> \
//         gridos-service [--serve] examples/gridos/secrets/production.bundle
//
// With --serve it then keeps running as a swift-service-lifecycle service
// group: the bundle is reloaded when its file changes (an atomic rename, a
// Kubernetes ConfigMap swap) and on SIGHUP, until SIGTERM or SIGINT.
import Foundation
import Logging
import SecretKernel
import SecretKernelService
import ServiceLifecycle
import UnixSignals

/// A formula cell: which connector it calls and the secrets that connector needs.
struct Formula {
    var text: String
    var plugin: String
    var keys: [String]
}

/// A workbook is shared: whoever opens it, its formulas run with its owner's secrets.
struct Workbook {
    var name: String
    var owner: String
    var openedBy: String
    var formulas: [Formula]
}

let orders = Formula(text: "=SHOPIFY.ORDERS(\"last 7 days\")", plugin: "shopify", keys: ["STORE_DOMAIN", "ADMIN_TOKEN"])
let issues = Formula(text: "=GITHUB.ISSUES(\"gridos/gridos\")", plugin: "github", keys: ["TOKEN"])
let charges = Formula(text: "=STRIPE.CHARGES(\"this month\")", plugin: "stripe", keys: ["SECRET_KEY"])
let webhooks = Formula(text: "=STRIPE.WEBHOOKS()", plugin: "stripe", keys: ["WEBHOOK_SECRET"])
let forecast = Formula(text: "=WEATHER.FORECAST(\"Lisbon\")", plugin: "weather", keys: ["API_KEY"])

let workbooks = [
    Workbook(name: "Q3 sales", owner: "alice", openedBy: "carol", formulas: [orders, issues]),
    Workbook(name: "Carol's store", owner: "carol", openedBy: "carol", formulas: [orders]),
    Workbook(name: "Billing", owner: "bob", openedBy: "alice", formulas: [charges, webhooks, issues]),
    Workbook(name: "Trip planner", owner: "dave", openedBy: "dave", formulas: [issues, forecast]),
]

/// A line on standard output, written at once, also into a pipe (a container's log collector).
func say(_ text: String = "") {
    try? FileHandle.standardOutput.write(contentsOf: Data((text + "\n").utf8))
}

func fail(_ message: String) -> Never {
    try? FileHandle.standardError.write(contentsOf: Data("gridos-service: \(message)\n".utf8))
    exit(1)
}

var arguments = CommandLine.arguments.dropFirst()
let serves = arguments.first == "--serve"
if serves { arguments.removeFirst() }
guard let bundle = arguments.first else { fail("usage: gridos-service [--serve] BUNDLE (pins in SECRETC_TRUSTED_ADMINS)") }
var logger = Logger(label: "gridos.secrets")
logger.logLevel = .info
let kernel: SecretKernel
do {
    // Pinned admins from the service's own configuration, never from the repository.
    let pins = try SecretKernel.Configuration.trustedAdmins(from: ProcessInfo.processInfo.environment["SECRETC_TRUSTED_ADMINS"] ?? "")
    // This service runs in production, and reads only slots scoped to it (or unscoped ones).
    kernel = try await SecretKernel.load(.init(
        bundle: .path(bundle), trustedAdmins: pins, expectedEnvironment: "production", scope: "formulas", logger: logger))
} catch {
    fail("refusing to start: \(error)")
}
say("booted: \(kernel)")

// The settings endpoint, GET /settings/plugin-secrets/shopify for alice: the
// seed's shape (plugin_slug, declared, set_keys), straight from the kernel.
let status = try kernel.status(plugin: "shopify", for: .user("alice"))
let encoder = JSONEncoder()
encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
say("GET /settings/plugin-secrets/shopify (alice): declared \(status.declared.map(\.key)), set_keys \(status.setKeys)")
say(String(decoding: try encoder.encode(status), as: UTF8.self))

for workbook in workbooks {
    say("\n\(workbook.name) — owned by \(workbook.owner), opened by \(workbook.openedBy):")
    for formula in workbook.formulas {
        var parts: [String] = []
        var ready = true
        for key in formula.keys {
            // Owner resolution: the workbook's owner, never the viewer.
            do {
                let secret = try kernel.secret(plugin: formula.plugin, key: key, for: .user(workbook.owner))
                parts.append("\(key) from \(secret.source)")
            } catch {
                // A name the bundle does not declare is a bug in the caller, said as such.
                parts.append(error.reason == .undeclared ? "\(error)" : "\(key) missing (\(error.reason))")
                ready = false
            }
        }
        say("  \(formula.text)  \(ready ? "runs" : "#SECRET!"): \(parts.joined(separator: ", "))")
    }
}

if serves {
    say("serving; reloads on change and SIGHUP, stops on SIGTERM")
    let group = ServiceGroup(
        services: [SecretKernelService(kernel: kernel)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    try await group.run()
    let info = kernel.info
    say("stopped: \(info.reloads) reloads, \(info.reloadFailures) refused")
}
