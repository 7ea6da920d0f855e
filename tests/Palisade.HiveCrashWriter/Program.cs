// Child of the hive crash test (tests/Palisade.Kernel.Tests/Registry/HiveCrashTests.cs).
//
//   Palisade.HiveCrashWriter HIVE [power-loss]
//
// Opens the hive with a small compaction threshold (so kills also land inside compactions) and writes operation
// after operation; after each one is acknowledged (SetValue returned Success) it prints its sequence number on a line
// of its own. Operation i sets value "V<i>" of key \Registry\Machine\Crash\K<i mod 16> to CrashStream.Data(i), then
// "Latest" of \Registry\Machine\Crash to i as a REG_QWORD; the line for i is printed after both. It stops only when
// killed, or after CrashStream.MaxOperations operations.
using Palisade.Api;
using Palisade.Kernel.Registry;

if (args.Length is < 1 or > 2)
{
    await Console.Error.WriteLineAsync("usage: Palisade.HiveCrashWriter HIVE [power-loss]").ConfigureAwait(false);
    return 2;
}

var options = new HiveOptions
{
    CompactionThreshold = 64 * 1024,
    Durability = args.Length == 2 && args[1] == "power-loss" ? HiveDurability.PowerLoss : HiveDurability.ProcessCrash,
};

Status status = RegistryManager.Open(args[0], options, out RegistryManager? registry);
if (status.IsError)
{
    await Console.Error.WriteLineAsync("cannot open hive: " + status).ConfigureAwait(false);
    return 1;
}

using (registry)
{
    for (int i = 0; i < CrashStream.MaxOperations; i++)
    {
        string key = CrashStream.KeyPath(i);
        status = registry!.CreateKey(key, out _);
        if (status.IsSuccess)
        {
            status = registry.SetValue(key, CrashStream.ValueName(i), RegistryValueType.Binary, CrashStream.Data(i));
        }

        if (status.IsSuccess)
        {
            status = registry.SetValue(CrashStream.RootKey, CrashStream.LatestName, RegistryValueType.QWord, RegistryData.FromQWord((ulong)i));
        }

        if (status.IsError)
        {
            await Console.Error.WriteLineAsync($"operation {i} failed: {status}").ConfigureAwait(false);
            return 1;
        }

        Console.Out.WriteLine(i);
    }
}

return 0;
