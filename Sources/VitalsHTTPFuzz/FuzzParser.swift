// libFuzzer target for HTTPRequestParser.
//
// Built by scripts/fuzz.sh with `--sanitize=fuzzer -Xswiftc -DVITALS_FUZZING`:
// SwiftPM then compiles this file as a library (no top-level code allowed)
// and libFuzzer supplies `main`, calling `LLVMFuzzerTestOneInput`.
//
// In a plain `swift build` (no VITALS_FUZZING) the `@main` at the end is the
// entry point instead: it replays the files named on the command line
// through the same checks (`swift run VitalsHTTPFuzz crash-…`). Top-level
// code cannot serve here: a libFuzzer build rejects it even inside an
// inactive `#if`.

#if canImport(Glibc)
import Glibc
#endif
import VitalsHTTP

/// Small limits, so that inputs of a few hundred bytes reach every limit.
private let tinyLimits = HTTPParserLimits(maxRequestLineBytes: 40, maxHeaderBytes: 96, maxHeaderCount: 4, maxBodyBytes: 32)

/// What a parser made of an input: the requests (with their bodies) and
/// the error it stopped at, if any. `continueExpected` is left out: whether
/// it is reported depends on how the bytes were split, by design.
private struct Outcome: Equatable {
    var requests: [HTTPRequest] = []
    var error: HTTPParseError?
}

/// Feeds `bytes` in chunks whose sizes cycle through `chunkSizes`, calling
/// `next()` until it asks for more after each feed, as the server does.
private func parse(_ bytes: UnsafeRawBufferPointer, limits: HTTPParserLimits, chunkSizes: [Int]) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var outcome = Outcome()
    var offset = 0
    var k = 0
    while offset < bytes.count {
        let size = min(max(chunkSizes[k % chunkSizes.count], 1), bytes.count - offset)
        k += 1
        parser.feed(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + size)]))
        offset += size
        do {
            while let event = try parser.next() {
                if case .request(let request) = event {
                    check(request, limits: limits)
                    outcome.requests.append(request)
                }
            }
        } catch {
            outcome.error = error
            return outcome
        }
    }
    return outcome
}

/// Invariants every accepted request satisfies.
private func check(_ request: HTTPRequest, limits: HTTPParserLimits) {
    precondition(request.body.count <= limits.maxBodyBytes, "body over the limit")
    precondition(request.headers.count <= limits.maxHeaderCount, "too many headers accepted")
    precondition(request.target.utf8.count <= limits.maxRequestLineBytes, "target longer than the request line limit")
    if let length = request.headers["content-length"] {
        precondition(length.utf8.allSatisfy { $0 == UInt8(ascii: ",") || $0 == 0x20 || $0 == 0x09 || ($0 >= 0x30 && $0 <= 0x39) })
    } else {
        precondition(request.body.isEmpty, "a body without Content-Length")
    }
    precondition(request.version == .http1_1 || request.version == .http1_0)
    if request.version == .http1_1 { precondition(request.headers["host"] != nil, "HTTP/1.1 without Host accepted") }
    for field in request.headers {
        precondition(!field.name.isEmpty && !field.name.utf8.contains { $0 <= 0x20 || $0 == UInt8(ascii: ":") })
        precondition(!field.value.utf8.contains { $0 == 0 || $0 == 0x0D || $0 == 0x0A })
    }
    // Exercise the lazy decoders too.
    let segments = request.pathSegments
    precondition(segments.allSatisfy { !$0.unicodeScalars.contains("\0") }, "NUL in a decoded path segment")
    _ = request.queryItems
    _ = request.keepAlive
    _ = HTTPResponse.error(status: .notFound, message: request.path).body.count
}

private func fuzzOne(_ bytes: UnsafeRawBufferPointer) {
    let chunking = bytes.isEmpty ? [1] : [Int(bytes[0] % 7) + 1, 1, Int(bytes[bytes.count - 1] % 13) + 1]
    for limits in [HTTPParserLimits.default, tinyLimits] {
        let whole = parse(bytes, limits: limits, chunkSizes: [bytes.count])
        let split = parse(bytes, limits: limits, chunkSizes: chunking)
        // Incremental parsing must not depend on how the bytes arrive.
        precondition(whole == split, "outcome depends on chunking: \(whole) vs \(split)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func vitalsHTTPFuzzParser(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#if !VITALS_FUZZING
/// Plain-build entry point: replays the files named on the command line.
/// Left out of libFuzzer builds, where libFuzzer's `main` drives.
@main
enum Replay {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let file = fopen(path, "rb") else {
                print("cannot open \(path)")
                exit(2)
            }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = fread(&chunk, 1, chunk.count, file)
                if n <= 0 { break }
                bytes.append(contentsOf: chunk[0..<n])
            }
            fclose(file)
            bytes.withUnsafeBytes { fuzzOne($0) }
            print("ok \(path) (\(bytes.count) bytes)")
        }
    }
}
#endif
