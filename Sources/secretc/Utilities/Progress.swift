import Foundation
import SecretCore

/// One line on the terminal saying what long work is doing, as git's
/// progress does: on standard error, only when it is a terminal, only once
/// the work has taken `SECRETC_PROGRESS_DELAY` seconds (default 1), and
/// erased when the work ends. Phases name counts and files, never a value.
final class TerminalProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let start = Date()
    private let delay: TimeInterval
    private let enabled: Bool
    private var phase: String?
    private var drawn: String?
    private var timer: (any DispatchSourceTimer)?

    init(environment: [String: String] = LaunchEnvironment.values) {
        delay = environment["SECRETC_PROGRESS_DELAY"].flatMap(TimeInterval.init) ?? 1
        enabled = isatty(STDERR_FILENO) == 1 && environment["TERM"] != "dumb"
        guard enabled else { return }
        let timer = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
        timer.schedule(deadline: .now() + .milliseconds(100), repeating: .milliseconds(100))
        timer.setEventHandler { [weak self] in self?.draw() }
        timer.resume()
        self.timer = timer
    }

    /// Now doing `phase` (e.g. "sealing 100,000 values").
    func report(_ phase: String) {
        guard enabled else { return }
        lock.withLock { self.phase = phase }
        draw()
    }

    /// The work is over: the line is erased, so what follows prints clean.
    func finish() {
        guard enabled else { return }
        timer?.cancel()
        lock.withLock {
            if drawn != nil { Console.write(STDERR_FILENO, "\r\u{1B}[K") }
            drawn = nil
            phase = nil
        }
    }

    private func draw() {
        lock.withLock {
            guard let phase, phase != drawn, Date().timeIntervalSince(start) >= delay else { return }
            Console.write(STDERR_FILENO, "\r\u{1B}[Ksecretc: \(VisibleText.escaped(phase))…")
            drawn = phase
        }
    }

    deinit { timer?.cancel() }
}
