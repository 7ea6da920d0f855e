// The records of the network filter engine and registry callbacks, by value (docs/security.md, "The isolated mode"). A
// classify function gets the whole context and only its result is read back; a flow callback gets the flow and nothing is
// read back; a registry callback gets its own copy of the notification and only its status and, for a bypass, the bypass
// result are read back. Values the engine validates (a filter's layer, action, flags, a condition's protocol) cross as
// they are, so that a driver's wrong argument gets the engine's status; what cannot be decoded is a malformed record.
using System.Net;
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

internal static class NetworkCodec
{
    /// <summary>An address: its 4 or 16 bytes, none for null.</summary>
    public static void Address(ref RecordWriter w, IPAddress? address)
    {
        if (address is null)
        {
            _ = w.Data(0);
            return;
        }

        Span<byte> bytes = stackalloc byte[16];
        _ = address.TryWriteBytes(bytes, out int length);
        bytes[..length].CopyTo(w.Data(length));
    }

    /// <summary>An address written by <see cref="Address(ref RecordWriter, IPAddress?)"/>; any length but 0, 4 and 16 is malformed.</summary>
    public static IPAddress? Address(ref RecordReader r)
    {
        ReadOnlySpan<byte> bytes = r.Data();
        if (bytes.Length is 4 or 16)
        {
            return new IPAddress(bytes);
        }

        if (bytes.Length != 0)
        {
            r.Fail();
        }

        return null;
    }

    public static void Write(ref RecordWriter w, in NetworkClassifyContext c)
    {
        w.I32((int)c.Layer);
        w.I32((int)c.Protocol);
        Address(ref w, c.LocalAddress);
        w.I32(c.LocalPort);
        Address(ref w, c.RemoteAddress);
        w.I32(c.RemotePort);
        w.I32(c.ProcessId);
        w.I64(c.ProcessStartKey);
        w.String(c.ApplicationPath);
        w.Identity(c.ApplicationFile);
        c.ApplicationHash.Span.CopyTo(w.Data(c.ApplicationHash.Length));
        // Arguments longer than a record can spare cross as "could not be read" (null), as the API allows.
        bool arguments = c.Arguments is not null && ArgumentBytes(c.Arguments) <= MaximumArgumentBytes;
        w.Bool(arguments);
        if (arguments)
        {
            IsolationCodec.WriteList(ref w, c.Arguments);
        }

        w.I32(c.UserId);
        w.I64(c.HoldDeadline);
    }

    /// <summary>The most bytes of arguments a classification carries to a host (the record's limit is 64 KiB).</summary>
    public const int MaximumArgumentBytes = 16 * 1024;

    private static int ArgumentBytes(IReadOnlyList<string> arguments)
    {
        int total = 0;
        for (int i = 0; i < arguments.Count && total <= MaximumArgumentBytes; i++)
        {
            total += 4 + System.Text.Encoding.UTF8.GetByteCount(arguments[i] ?? "");
        }

        return total;
    }

    public static NetworkClassifyContext ReadClassifyContext(ref RecordReader r)
    {
        NetworkLayer layer = r.Enum<NetworkLayer>();
        NetworkProtocol protocol = r.Enum<NetworkProtocol>();
        IPAddress? local = Address(ref r);
        int localPort = r.I32();
        IPAddress? remote = Address(ref r);
        int remotePort = r.I32();
        int pid = r.I32();
        long key = r.I64();
        string? application = r.String();
        FileIdentity file = r.Identity();
        ReadOnlySpan<byte> hash = r.Data();
        byte[] digest = hash.Length == 0 ? [] : hash.ToArray();
        string[]? arguments = r.Bool() ? r.Strings() : null;
        return new NetworkClassifyContext
        {
            Layer = layer,
            Protocol = protocol,
            LocalAddress = local,
            LocalPort = localPort,
            RemoteAddress = remote,
            RemotePort = remotePort,
            ProcessId = pid,
            ProcessStartKey = key,
            ApplicationPath = application!,
            ApplicationFile = file,
            ApplicationHash = digest,
            Arguments = arguments,
            UserId = r.I32(),
            HoldDeadline = r.I64(),
        };
    }

    public static void Write(ref RecordWriter w, in NetworkFlowInfo flow)
    {
        w.I32((int)flow.Event);
        w.I64(flow.FlowId);
        NetworkClassifyContext c = flow.Classify;
        Write(ref w, in c);
        w.String(flow.DecidingFilter);
        w.String(flow.DecidingDriver);
    }

    public static NetworkFlowInfo ReadFlow(ref RecordReader r) => new()
    {
        Event = r.Enum<NetworkFlowEvent>(),
        FlowId = r.I64(),
        Classify = ReadClassifyContext(ref r),
        DecidingFilter = r.String(),
        DecidingDriver = r.String(),
    };

    /// <summary>A filter definition; the caller checked that it has at most <see cref="MaximumConditions"/> conditions, none null.</summary>
    public static void Write(ref RecordWriter w, NetworkFilter filter)
    {
        w.String(filter.Name);
        w.I32((int)filter.Layer);
        w.I64(filter.Sublayer.Value);
        w.U64(filter.Weight);
        w.I32((int)filter.Action);
        w.I64(filter.Callout.Value);
        w.I32((int)filter.Flags);
        w.U32((uint)filter.Conditions.Count);
        foreach (NetworkCondition c in filter.Conditions)
        {
            w.I32((int)c.Field);
            Address(ref w, c.Address);
            w.I32(c.PrefixLength);
            w.I32(c.LowPort);
            w.I32(c.HighPort);
            w.I32((int)c.MatchedProtocol);
            w.I32(c.MatchedUserId);
            w.String(c.Path);
            c.Hash.Span.CopyTo(w.Data(c.Hash.Length));
        }
    }

    /// <summary>The most flows one FlowNotifications record carries (its reply holds an outcome, maybe an exception, for each).</summary>
    public const int FlowBatch = 32;

    /// <summary>The most conditions a filter record carries (the engine's limit).</summary>
    public const int MaximumConditions = 16;

    /// <summary>A filter definition written by <see cref="Write(ref RecordWriter, NetworkFilter)"/>; null when malformed.</summary>
    public static NetworkFilter? ReadFilter(ref RecordReader r)
    {
        string? name = r.String();
        NetworkLayer layer = r.Flags<NetworkLayer>();
        var sublayer = new CallbackCookie(r.I64());
        ulong weight = r.U64();
        NetworkAction action = r.Flags<NetworkAction>();
        var callout = new CallbackCookie(r.I64());
        NetworkFilterFlags flags = r.Flags<NetworkFilterFlags>();
        uint count = r.U32();
        if (count > MaximumConditions)
        {
            r.Fail();
            return null;
        }

        var conditions = new NetworkCondition[count];
        for (int i = 0; i < conditions.Length && !r.Malformed; i++)
        {
            ConditionField field = r.Enum<ConditionField>();
            IPAddress? address = Address(ref r);
            int prefix = r.I32();
            int low = r.I32();
            int high = r.I32();
            NetworkProtocol protocol = r.Flags<NetworkProtocol>();
            int user = r.I32();
            string? path = r.String();
            ReadOnlySpan<byte> hash = r.Data();
            conditions[i] = field switch
            {
                ConditionField.RemoteAddress => NetworkCondition.RemoteAddress(address!, prefix),
                ConditionField.LocalAddress => NetworkCondition.LocalAddress(address!, prefix),
                ConditionField.RemotePort => NetworkCondition.RemotePort(low, high),
                ConditionField.LocalPort => NetworkCondition.LocalPort(low, high),
                ConditionField.Protocol => NetworkCondition.Protocol(protocol),
                ConditionField.ApplicationPath => NetworkCondition.ApplicationPath(path!),
                ConditionField.ApplicationFolder => NetworkCondition.ApplicationFolder(path!),
                ConditionField.UserId => NetworkCondition.UserId(user),
                _ => NetworkCondition.ApplicationHash(hash),
            };
        }

        if (r.Malformed)
        {
            return null;
        }

        return new NetworkFilter
        {
            Name = name!,
            Layer = layer,
            Sublayer = sublayer,
            Weight = weight,
            Action = action,
            Callout = callout,
            Flags = flags,
            Conditions = conditions,
        };
    }

    public static void Write(ref RecordWriter w, in RegistryNotification n)
    {
        w.I32((int)n.NotifyClass);
        w.I32(n.ProcessId);
        w.String(n.KeyPath);
        w.String(n.ValueName);
        w.String(n.NewName);
        w.I32((int)n.ValueType);
        n.Data.Span.CopyTo(w.Data(n.Data.Length));
        w.Status(n.OperationStatus);
    }

    public static RegistryNotification ReadRegistryNotification(ref RecordReader r)
    {
        RegistryNotifyClass notifyClass = r.Enum<RegistryNotifyClass>();
        int pid = r.I32();
        string key = r.Text();
        string? value = r.String();
        string? newName = r.String();
        RegistryValueType type = r.Flags<RegistryValueType>();
        ReadOnlySpan<byte> data = r.Data();
        return new RegistryNotification
        {
            NotifyClass = notifyClass,
            ProcessId = pid,
            KeyPath = key,
            ValueName = value,
            NewName = newName,
            ValueType = type,
            Data = data.Length == 0 ? ReadOnlyMemory<byte>.Empty : data.ToArray(),
            OperationStatus = r.Status(),
        };
    }
}
