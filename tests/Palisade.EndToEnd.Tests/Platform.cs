[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

// Each test runs whole process trees under the kernel; one at a time keeps a two-core machine responsive.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
