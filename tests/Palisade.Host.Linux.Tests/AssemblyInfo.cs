// The host runs guests under Linux seccomp; nothing here is meaningful elsewhere.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
