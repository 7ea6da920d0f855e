namespace Palisade.TestDrivers.Helper;

/// <summary>Text the sample driver reports when it loads; it lives here so that loading it needs the package's second assembly.</summary>
public static class Greeting
{
    public static string For(string driverName) => "hello from " + driverName;
}
