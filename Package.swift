// swift-tools-version: 6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "secretc",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "secretc", targets: ["secretc"]),
        .library(name: "GPG", targets: ["GPG"]),
        .library(name: "SecretModel", targets: ["SecretModel"]),
        .library(name: "SecretCore", targets: ["SecretCore"]),
        .library(name: "SecretKernel", targets: ["SecretKernel"]),
        // The kernel as a swift-service-lifecycle Service (reload on change and SIGHUP);
        // a product of its own, so a service that wants only SecretKernel builds neither.
        .library(name: "SecretKernelService", targets: ["SecretKernelService"]),
        // A swift-configuration provider over the kernel (its own product, like the Service).
        .library(name: "SecretKernelConfiguration", targets: ["SecretKernelConfiguration"]),
        // A C ABI over SecretKernel: the shared library the Python package loads.
        .library(name: "SecretKernelC", type: .dynamic, targets: ["SecretKernelC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
    ],
    targets: [
        // gpgme, as the system provides it. Only the GPG target imports it.
        .systemLibrary(
            name: "CGPGME",
            pkgConfig: "gpgme",
            providers: [.apt(["libgpgme-dev"]), .brew(["gpgme"])]
        ),
        // libyaml, the parser Yams wraps, read event by event for large declarations.
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"]), .brew(["libyaml"])]
        ),
        // libgcrypt, the library gpg itself encrypts with: AES-256-GCM with one
        // key schedule for all the values under a data key (BundleSeal's opener).
        .systemLibrary(
            name: "CGcrypt",
            pkgConfig: "libgcrypt",
            providers: [.apt(["libgcrypt20-dev"]), .brew(["libgcrypt"])]
        ),
        // Linux calls that Swift's Glibc module leaves out (sync_file_range, malloc_trim).
        .target(name: "CLinux"),
        // Swift-owned wrapper: every gpgme handle owned by a class, every error mapped.
        .target(
            name: "GPG",
            dependencies: [
                "CGPGME", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // Names, their grammar and the seeds' status shape: shared by the
        // compiler and the runtime, so it depends on nothing.
        .target(name: "SecretCore", swiftSettings: strictSettings),
        // The bundle's text format: parse and write only, no cryptography.
        .target(name: "BundleFormat", dependencies: ["SecretCore"], swiftSettings: strictSettings),
        // Sealing and opening bundles: AES-256-GCM values, GPG data keys and signatures.
        .target(
            name: "BundleSeal",
            dependencies: ["BundleFormat", "CGcrypt", "GPG", "SecretCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        // Declarations, manifests, validation and located diagnostics.
        .target(
            name: "SecretModel",
            dependencies: ["SecretCore", "GPG", "CYAML", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        // The write and read pipeline: compile, set, unset, get.
        .target(
            name: "SecretCompiler",
            dependencies: [
                "BundleFormat", "BundleSeal", "CLinux", "GPG", "SecretCore", "SecretModel",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The runtime loader: no YAML, no argument parsing; reads only the bundle.
        .target(
            name: "SecretKernel",
            dependencies: [
                "BundleFormat", "BundleSeal", "CLinux", "GPG", "SecretCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The command line: argument parsing and printing only.
        .executableTarget(
            name: "secretc",
            dependencies: [
                "SecretCore", "SecretModel", "SecretCompiler", "SecretKernel", "BundleFormat", "CLinux", "GPG",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SecretKernelService",
            dependencies: [
                "SecretCore", "SecretKernel", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SecretKernelConfiguration",
            dependencies: ["SecretKernel", .product(name: "Configuration", package: "swift-configuration")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SecretKernelC",
            dependencies: ["SecretKernel", "GPG", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSettings
        ),
        // The example service: boots a SecretKernel on the example's bundle.
        .executableTarget(
            name: "gridos-service",
            dependencies: [
                "SecretKernel", "SecretKernelService", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "examples/gridos/service",
            swiftSettings: strictSettings
        ),
        // Benchmarks and data-set generators (not a product).
        .executableTarget(
            name: "secretc-bench",
            dependencies: [
                "SecretModel", "SecretCompiler", "SecretKernel", "BundleFormat", "BundleSeal", "CLinux", "GPG",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Writes the bundle test vectors (Tests/BundleTests/Vectors) from the example's keys.
        .executableTarget(
            name: "secretc-vectors",
            dependencies: ["BundleFormat", "BundleSeal", "GPG"],
            path: "Tests/BundleTests/VectorGenerator",
            swiftSettings: strictSettings
        ),
        .target(
            name: "TestSupport",
            dependencies: ["GPG"],
            path: "Tests/TestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(name: "GPGTests", dependencies: ["GPG", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(
            name: "SecretModelTests",
            dependencies: ["SecretCore", "SecretModel", "GPG", "TestSupport"],
            resources: [.copy("Vectors")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BundleTests",
            dependencies: [
                "BundleFormat", "BundleSeal", "GPG", "SecretKernel", "TestSupport", .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["VectorGenerator", "reference_reader.py"],
            resources: [.copy("Vectors")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SecretKernelTests",
            dependencies: [
                "SecretKernel", "SecretKernelService", "SecretKernelConfiguration", "BundleFormat", "BundleSeal", "GPG",
                "TestSupport", .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["TestSupport", "secretc", "SecretCompiler", "BundleFormat", "BundleSeal", "GPG"],
            swiftSettings: strictSettings
        ),
    ]
)
