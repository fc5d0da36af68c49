/// The agent's version, shown by `vitals version` and in `/v1/status`.
public enum VitalsVersion {
    public static let current = "0.1.0"
}
