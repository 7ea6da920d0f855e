// What a driver may use of the .NET base library: an allowlist, because a denylist always misses something. A type
// of the base library is usable only when its namespace or the type itself is listed here; some listed types keep
// members that reach process-wide state or bind by name, and those are refused one by one. Anything not listed is
// refused with the rule of its namespace (reflection, file system, sockets...) or, failing that, PV001.
//
// The test for a listed type or namespace: it is type-safe, and nothing in it reaches the kernel's memory, threads,
// descriptors or code, nor state the whole process shares. Collections, strings and text, spans (not
// MemoryMarshal), Math and numerics, Interlocked/Volatile/locks, hashing and signature crypto, Buffers,
// BinaryPrimitives, Globalization and LINQ to objects pass; file, socket and process access, reflection, code
// generation, native interop and thread creation do not.
using System.Reflection;

namespace Palisade.Kernel.Drivers.Verification;

/// <summary>The verifier's allowlist of the base library.</summary>
internal static class BaseLibraryPolicy
{
    private static readonly string[] AllowedNamespaces =
    [
        "System.Collections", "System.Collections.Generic", "System.Collections.Concurrent", "System.Collections.Immutable",
        "System.Collections.Specialized", "System.Collections.ObjectModel", "System.Collections.Frozen",
        "System.Linq", "System.Text", "System.Text.Unicode", "System.Text.RegularExpressions", "System.Text.Json",
        "System.Text.Json.Nodes", "System.Globalization", "System.Numerics", "System.Buffers", "System.Buffers.Binary",
        "System.Buffers.Text", "System.Security.Cryptography", "System.Threading.Tasks", "System.Diagnostics.CodeAnalysis",
        "System.Runtime.Versioning", "System.IO.Compression",
    ];

    private static readonly HashSet<string> AllowedTypes = new(StringComparer.Ordinal)
    {
        // System: values, text, time, math, delegates, exceptions, spans.
        "System.Object", "System.String", "System.Char", "System.Boolean", "System.Byte", "System.SByte", "System.Int16",
        "System.UInt16", "System.Int32", "System.UInt32", "System.Int64", "System.UInt64", "System.Int128", "System.UInt128",
        "System.Half", "System.Single", "System.Double", "System.Decimal", "System.IntPtr", "System.UIntPtr", "System.Void",
        "System.ValueType", "System.Enum", "System.Array", "System.ArraySegment`1", "System.Nullable", "System.Nullable`1",
        "System.DateTime", "System.DateTimeOffset", "System.DateTimeKind", "System.DateOnly", "System.TimeOnly",
        "System.TimeSpan", "System.DayOfWeek", "System.Guid", "System.Version", "System.Uri", "System.UriKind",
        "System.UriComponents", "System.UriFormat", "System.UriPartial", "System.UriHostNameType", "System.UriBuilder",
        "System.Math", "System.MathF", "System.MidpointRounding", "System.BitConverter", "System.Convert",
        "System.Base64FormattingOptions", "System.Random", "System.HashCode", "System.Lazy`1", "System.Lazy`2",
        "System.Index", "System.Range", "System.Tuple", "System.Tuple`1", "System.Tuple`2", "System.Tuple`3", "System.Tuple`4", "System.Tuple`5", "System.Tuple`6", "System.Tuple`7", "System.Tuple`8", "System.ValueTuple", "System.ValueTuple`1", "System.ValueTuple`2", "System.ValueTuple`3", "System.ValueTuple`4", "System.ValueTuple`5", "System.ValueTuple`6", "System.ValueTuple`7", "System.ValueTuple`8", "System.StringComparer", "System.StringComparison", "System.StringSplitOptions",
        "System.CharEnumerator", "System.FormattableString", "System.IFormattable", "System.IFormatProvider",
        "System.ICustomFormatter", "System.ISpanFormattable", "System.IUtf8SpanFormattable", "System.IParsable`1",
        "System.ISpanParsable`1", "System.IUtf8SpanParsable`1", "System.IEquatable`1", "System.IComparable",
        "System.IComparable`1", "System.IConvertible", "System.ICloneable", "System.IDisposable", "System.IAsyncDisposable",
        "System.IObservable`1", "System.IObserver`1", "System.IProgress`1", "System.IServiceProvider", "System.TypeCode",
        "System.Action", "System.Action`1", "System.Action`2", "System.Action`3", "System.Action`4", "System.Action`5", "System.Action`6", "System.Action`7", "System.Action`8", "System.Action`9", "System.Action`10", "System.Action`11", "System.Action`12", "System.Action`13", "System.Action`14", "System.Action`15", "System.Action`16", "System.Func`1", "System.Func`2", "System.Func`3", "System.Func`4", "System.Func`5", "System.Func`6", "System.Func`7", "System.Func`8", "System.Func`9", "System.Func`10", "System.Func`11", "System.Func`12", "System.Func`13", "System.Func`14", "System.Func`15", "System.Func`16", "System.Func`17",
        "System.Predicate`1", "System.Comparison`1", "System.Converter`2", "System.EventHandler", "System.EventHandler`1",
        "System.EventArgs", "System.Delegate", "System.MulticastDelegate", "System.Attribute", "System.AttributeUsageAttribute",
        "System.AttributeTargets", "System.FlagsAttribute", "System.ObsoleteAttribute", "System.CLSCompliantAttribute",
        "System.ParamArrayAttribute", "System.SerializableAttribute", "System.NonSerializedAttribute",
        "System.ThreadStaticAttribute", "System.Span`1", "System.ReadOnlySpan`1", "System.Memory`1", "System.ReadOnlyMemory`1",
        "System.MemoryExtensions", "System.Buffer", "System.GC", "System.Environment", "System.OperatingSystem", "System.Type",
        "System.Activator", "System.WeakReference", "System.WeakReference`1", "System.Exception", "System.SystemException",
        "System.ApplicationException", "System.ArgumentException", "System.ArgumentNullException",
        "System.ArgumentOutOfRangeException", "System.ArithmeticException", "System.DivideByZeroException",
        "System.OverflowException", "System.FormatException", "System.IndexOutOfRangeException", "System.InvalidCastException",
        "System.InvalidOperationException", "System.NotImplementedException", "System.NotSupportedException",
        "System.NullReferenceException", "System.ObjectDisposedException", "System.OperationCanceledException",
        "System.PlatformNotSupportedException", "System.RankException", "System.TimeoutException",
        "System.UnauthorizedAccessException", "System.AggregateException", "System.ArrayTypeMismatchException",
        "System.InsufficientExecutionStackException", "System.OutOfMemoryException", "System.MissingMemberException",
        "System.MissingFieldException", "System.MissingMethodException", "System.MemberAccessException",
        "System.FieldAccessException", "System.MethodAccessException", "System.TypeLoadException",
        "System.Collections.Generic.KeyNotFoundException", "System.Runtime.CompilerServices.RuntimeHelpers",

        // What typeof and array initializers compile to (ldtoken); none of their members may be used.
        "System.RuntimeTypeHandle", "System.RuntimeFieldHandle",

        // System.Threading: synchronization and cancellation; threads themselves only through the members listed below.
        "System.Threading.Interlocked", "System.Threading.Volatile", "System.Threading.Monitor", "System.Threading.Lock",
        "System.Threading.SpinLock", "System.Threading.SpinWait", "System.Threading.ReaderWriterLockSlim",
        "System.Threading.SemaphoreSlim", "System.Threading.ManualResetEventSlim", "System.Threading.CountdownEvent",
        "System.Threading.Barrier", "System.Threading.CancellationToken", "System.Threading.CancellationTokenSource",
        "System.Threading.CancellationTokenRegistration", "System.Threading.LazyInitializer",
        "System.Threading.LazyThreadSafetyMode", "System.Threading.ThreadLocal`1", "System.Threading.AsyncLocal`1",
        "System.Threading.AsyncLocalValueChangedArgs`1", "System.Threading.Timeout", "System.Threading.SynchronizationLockException",
        "System.Threading.LockRecursionException", "System.Threading.ThreadInterruptedException",
        "System.Threading.SemaphoreFullException", "System.Threading.Thread",

        // System.IO: streams over memory or over what IFilterManager.OpenFile returned; no path-based access.
        "System.IO.Stream", "System.IO.MemoryStream", "System.IO.BufferedStream", "System.IO.StreamReader",
        "System.IO.StreamWriter", "System.IO.TextReader", "System.IO.TextWriter", "System.IO.StringReader",
        "System.IO.StringWriter", "System.IO.BinaryReader", "System.IO.BinaryWriter", "System.IO.IOException",
        "System.IO.EndOfStreamException", "System.IO.InvalidDataException", "System.IO.FileNotFoundException",
        "System.IO.DirectoryNotFoundException", "System.IO.PathTooLongException", "System.IO.FileLoadException", "System.IO.SeekOrigin",
        "System.IO.FileAccess", "System.IO.FileMode", "System.IO.FileShare", "System.IO.Path", "System.IO.UnixFileMode",

        // System.Net: addresses are values; no socket, DNS or HTTP.
        "System.Net.IPAddress", "System.Net.IPEndPoint", "System.Net.IPNetwork", "System.Net.EndPoint", "System.Net.WebUtility",
        "System.Net.Sockets.AddressFamily", "System.Net.Sockets.ProtocolType", "System.Net.Sockets.SocketType",
        "System.Net.Sockets.SocketError",

        // What the C# compiler emits: async state machines, interpolated strings, inline arrays, nullable and ref-safety
        // metadata, collection expressions.
        "System.Runtime.CompilerServices.AsyncTaskMethodBuilder", "System.Runtime.CompilerServices.AsyncTaskMethodBuilder`1",
        "System.Runtime.CompilerServices.AsyncValueTaskMethodBuilder", "System.Runtime.CompilerServices.AsyncValueTaskMethodBuilder`1",
        "System.Runtime.CompilerServices.AsyncIteratorMethodBuilder", "System.Runtime.CompilerServices.TaskAwaiter",
        "System.Runtime.CompilerServices.TaskAwaiter`1", "System.Runtime.CompilerServices.ValueTaskAwaiter",
        "System.Runtime.CompilerServices.ValueTaskAwaiter`1", "System.Runtime.CompilerServices.ConfiguredTaskAwaitable",
        "System.Runtime.CompilerServices.ConfiguredTaskAwaitable`1", "System.Runtime.CompilerServices.ConfiguredValueTaskAwaitable",
        "System.Runtime.CompilerServices.ConfiguredValueTaskAwaitable`1", "System.Runtime.CompilerServices.ConfiguredCancelableAsyncEnumerable`1",
        "System.Runtime.CompilerServices.IAsyncStateMachine", "System.Runtime.CompilerServices.INotifyCompletion",
        "System.Runtime.CompilerServices.ICriticalNotifyCompletion", "System.Runtime.CompilerServices.AsyncStateMachineAttribute",
        "System.Runtime.CompilerServices.IteratorStateMachineAttribute", "System.Runtime.CompilerServices.AsyncIteratorStateMachineAttribute",
        "System.Runtime.CompilerServices.AsyncMethodBuilderAttribute", "System.Runtime.CompilerServices.CompilerGeneratedAttribute",
        "System.Runtime.CompilerServices.ExtensionAttribute", "System.Runtime.CompilerServices.IsReadOnlyAttribute",
        "System.Runtime.CompilerServices.IsByRefLikeAttribute", "System.Runtime.CompilerServices.IsUnmanagedAttribute",
        "System.Runtime.CompilerServices.NullableAttribute", "System.Runtime.CompilerServices.NullableContextAttribute",
        "System.Runtime.CompilerServices.NullablePublicOnlyAttribute", "System.Runtime.CompilerServices.RefSafetyRulesAttribute",
        "System.Runtime.CompilerServices.ScopedRefAttribute", "System.Runtime.CompilerServices.RequiredMemberAttribute",
        "System.Runtime.CompilerServices.CompilerFeatureRequiredAttribute", "System.Runtime.CompilerServices.IsExternalInit",
        "System.Runtime.CompilerServices.TupleElementNamesAttribute", "System.Runtime.CompilerServices.InlineArrayAttribute",
        "System.Runtime.CompilerServices.CollectionBuilderAttribute", "System.Runtime.CompilerServices.InterpolatedStringHandlerAttribute",
        "System.Runtime.CompilerServices.InterpolatedStringHandlerArgumentAttribute",
        "System.Runtime.CompilerServices.DefaultInterpolatedStringHandler", "System.Runtime.CompilerServices.FormattableStringFactory",
        "System.Runtime.CompilerServices.CallerMemberNameAttribute", "System.Runtime.CompilerServices.CallerFilePathAttribute",
        "System.Runtime.CompilerServices.CallerLineNumberAttribute", "System.Runtime.CompilerServices.CallerArgumentExpressionAttribute",
        "System.Runtime.CompilerServices.MethodImplAttribute", "System.Runtime.CompilerServices.MethodImplOptions",
        "System.Runtime.CompilerServices.MethodCodeType", "System.Runtime.CompilerServices.ITuple",
        "System.Runtime.CompilerServices.StrongBox`1", "System.Runtime.CompilerServices.IStrongBox",
        "System.Runtime.CompilerServices.ConditionalWeakTable`2", "System.Runtime.CompilerServices.SwitchExpressionException",
        "System.Runtime.CompilerServices.ParamCollectionAttribute", "System.Runtime.CompilerServices.OverloadResolutionPriorityAttribute",
        "System.Runtime.CompilerServices.ModuleInitializerAttribute", "System.Runtime.CompilerServices.EnumeratorCancellationAttribute",
        "System.Runtime.CompilerServices.IsConst", "System.Runtime.CompilerServices.IsVolatile",
        "System.Runtime.CompilerServices.RequiresLocationAttribute", "System.Runtime.CompilerServices.PreserveBaseOverridesAttribute",
        "System.Runtime.CompilerServices.RuntimeCompatibilityAttribute", "System.Runtime.CompilerServices.CompilationRelaxationsAttribute",
        "System.Runtime.CompilerServices.CompilationRelaxations", "System.Runtime.CompilerServices.InternalsVisibleToAttribute",
        "System.Runtime.CompilerServices.ExtensionMarkerAttribute", "System.Runtime.CompilerServices.RuntimeFeature",
        "System.Runtime.CompilerServices.InlineArray2`1", "System.Runtime.CompilerServices.InlineArray3`1",
        "System.Runtime.CompilerServices.InlineArray4`1", "System.Runtime.CompilerServices.InlineArray5`1",
        "System.Runtime.CompilerServices.InlineArray6`1", "System.Runtime.CompilerServices.InlineArray7`1",
        "System.Runtime.CompilerServices.InlineArray8`1", "System.Runtime.CompilerServices.InlineArray9`1",
        "System.Runtime.CompilerServices.InlineArray10`1", "System.Runtime.CompilerServices.InlineArray11`1",
        "System.Runtime.CompilerServices.InlineArray12`1", "System.Runtime.CompilerServices.InlineArray13`1",
        "System.Runtime.CompilerServices.InlineArray14`1", "System.Runtime.CompilerServices.InlineArray15`1",
        "System.Runtime.CompilerServices.InlineArray16`1", "System.Runtime.ExceptionServices.ExceptionDispatchInfo",
        "System.Runtime.InteropServices.InAttribute", "System.Runtime.InteropServices.OutAttribute",
        "System.Runtime.InteropServices.OptionalAttribute", "System.Runtime.InteropServices.DefaultParameterValueAttribute",
        "System.Runtime.InteropServices.LayoutKind", "System.Runtime.InteropServices.CharSet",
        "System.Runtime.InteropServices.CollectionsMarshal", "System.Runtime.InteropServices.ImmutableCollectionsMarshal",
        "System.Runtime.Serialization.ISerializable", "System.Runtime.Serialization.SerializationInfo",
        "System.Runtime.Serialization.StreamingContext",

        // Attributes that only describe.
        "System.Reflection.AssemblyCompanyAttribute", "System.Reflection.AssemblyConfigurationAttribute",
        "System.Reflection.AssemblyCopyrightAttribute", "System.Reflection.AssemblyDescriptionAttribute",
        "System.Reflection.AssemblyFileVersionAttribute", "System.Reflection.AssemblyInformationalVersionAttribute",
        "System.Reflection.AssemblyProductAttribute", "System.Reflection.AssemblyTitleAttribute",
        "System.Reflection.AssemblyTrademarkAttribute", "System.Reflection.AssemblyVersionAttribute",
        "System.Reflection.AssemblyMetadataAttribute", "System.Reflection.AssemblyCultureAttribute",
        "System.Reflection.DefaultMemberAttribute", "System.Diagnostics.ConditionalAttribute",
        "System.Diagnostics.DebuggerDisplayAttribute", "System.Diagnostics.DebuggerBrowsableAttribute",
        "System.Diagnostics.DebuggerBrowsableState", "System.Diagnostics.DebuggerHiddenAttribute",
        "System.Diagnostics.DebuggerStepThroughAttribute", "System.Diagnostics.DebuggerNonUserCodeAttribute",
        "System.Diagnostics.DebuggableAttribute", "System.Diagnostics.DebuggerTypeProxyAttribute",
        "System.Diagnostics.StackTraceHiddenAttribute", "System.Diagnostics.UnreachableException", "System.Diagnostics.Stopwatch",
        "System.ComponentModel.EditorBrowsableAttribute", "System.ComponentModel.EditorBrowsableState",
        "System.ComponentModel.DescriptionAttribute", "System.ComponentModel.DefaultValueAttribute",
        "System.CodeDom.Compiler.GeneratedCodeAttribute", "System.Runtime.CompilerServices.NativeIntegerAttribute",

        // The marker the C# compiler puts on the attributes it embeds in an assembly (NullableAttribute...).
        "Microsoft.CodeAnalysis.EmbeddedAttribute",
    };

    // Types refused with a rule of their own, even inside an allowed namespace.
    private static readonly Dictionary<string, VerifierRule> DeniedTypes = new(StringComparer.Ordinal)
    {
        ["System.Runtime.CompilerServices.Unsafe"] = VerifierRules.UnsafeClass,
        ["System.Runtime.CompilerServices.UnsafeAccessorAttribute"] = VerifierRules.UnsafeAccessor,
        ["System.Runtime.CompilerServices.UnsafeAccessorKind"] = VerifierRules.UnsafeAccessor,
        ["System.Runtime.CompilerServices.UnsafeAccessorTypeAttribute"] = VerifierRules.UnsafeAccessor,
        ["System.Runtime.CompilerServices.IgnoresAccessChecksToAttribute"] = VerifierRules.IgnoresAccessChecks,
        ["System.Runtime.CompilerServices.SkipLocalsInitAttribute"] = VerifierRules.UninitializedLocals,
        ["System.Runtime.CompilerServices.FixedBufferAttribute"] = VerifierRules.Pointers,
        ["System.Runtime.CompilerServices.UnsafeValueTypeAttribute"] = VerifierRules.Pointers,
        ["System.Runtime.CompilerServices.YieldAwaitable"] = VerifierRules.Threads,
        ["System.Runtime.CompilerServices.AsyncVoidMethodBuilder"] = VerifierRules.Threads,
        ["System.Runtime.InteropServices.MemoryMarshal"] = VerifierRules.MarshalViews,
        ["System.Runtime.InteropServices.NativeLibrary"] = VerifierRules.PInvoke,
        ["System.Runtime.InteropServices.DllImportAttribute"] = VerifierRules.PInvoke,
        ["System.Runtime.InteropServices.LibraryImportAttribute"] = VerifierRules.PInvoke,
        ["System.Runtime.InteropServices.UnmanagedCallersOnlyAttribute"] = VerifierRules.PInvoke,
        ["System.Runtime.InteropServices.UnmanagedFunctionPointerAttribute"] = VerifierRules.PInvoke,
        ["System.Runtime.InteropServices.DefaultDllImportSearchPathsAttribute"] = VerifierRules.PInvoke,
        ["System.Runtime.InteropServices.SuppressGCTransitionAttribute"] = VerifierRules.PInvoke,
        ["System.Security.UnverifiableCodeAttribute"] = VerifierRules.Pointers,
        ["System.TypedReference"] = VerifierRules.UncheckedIl,
        ["System.ArgIterator"] = VerifierRules.UncheckedIl,
        ["System.RuntimeArgumentHandle"] = VerifierRules.UncheckedIl,
        ["System.RuntimeMethodHandle"] = VerifierRules.Reflection,
        ["System.ModuleHandle"] = VerifierRules.Reflection,
        ["System.AppDomain"] = VerifierRules.AssemblyLoading,
        ["System.Console"] = VerifierRules.SharedState,
        ["System.AppContext"] = VerifierRules.SharedState,
        ["System.Progress`1"] = VerifierRules.Threads,
        ["System.TimeProvider"] = VerifierRules.Threads,
        ["System.Diagnostics.Process"] = VerifierRules.ProcessControl,
        ["System.Diagnostics.ProcessStartInfo"] = VerifierRules.ProcessControl,
        ["System.Diagnostics.Debug"] = VerifierRules.ProcessControl,
        ["System.Diagnostics.Trace"] = VerifierRules.ProcessControl,
        ["System.Diagnostics.Debugger"] = VerifierRules.ProcessControl,
        ["System.Diagnostics.StackTrace"] = VerifierRules.Reflection,
        ["System.Diagnostics.StackFrame"] = VerifierRules.Reflection,
        ["System.Linq.ParallelEnumerable"] = VerifierRules.Threads,
        ["System.Linq.ParallelQuery"] = VerifierRules.Threads,
        ["System.Linq.ParallelQuery`1"] = VerifierRules.Threads,
        ["System.Linq.OrderedParallelQuery`1"] = VerifierRules.Threads,
        ["System.Linq.Queryable"] = VerifierRules.CodeGeneration,
        ["System.Linq.IQueryable"] = VerifierRules.CodeGeneration,
        ["System.Linq.IQueryable`1"] = VerifierRules.CodeGeneration,
        ["System.Linq.IOrderedQueryable"] = VerifierRules.CodeGeneration,
        ["System.Linq.IOrderedQueryable`1"] = VerifierRules.CodeGeneration,
        ["System.Linq.IQueryProvider"] = VerifierRules.CodeGeneration,
        ["System.Linq.EnumerableQuery"] = VerifierRules.CodeGeneration,
        ["System.Linq.EnumerableQuery`1"] = VerifierRules.CodeGeneration,
        ["System.Linq.EnumerableExecutor"] = VerifierRules.CodeGeneration,
        ["System.Linq.EnumerableExecutor`1"] = VerifierRules.CodeGeneration,
        ["System.Text.Json.JsonSerializer"] = VerifierRules.Reflection,
        ["System.Security.Cryptography.CryptoConfig"] = VerifierRules.Reflection,
        ["System.Security.Cryptography.SafeEvpPKeyHandle"] = VerifierRules.RawMemory,
        ["System.Security.Cryptography.ECDsaOpenSsl"] = VerifierRules.RawMemory,
        ["System.Security.Cryptography.RSAOpenSsl"] = VerifierRules.RawMemory,
        ["System.Security.Cryptography.DSAOpenSsl"] = VerifierRules.RawMemory,
        ["System.Security.Cryptography.ECDiffieHellmanOpenSsl"] = VerifierRules.RawMemory,
        ["System.Threading.Tasks.Parallel"] = VerifierRules.Threads,
        ["System.Threading.Tasks.ParallelOptions"] = VerifierRules.Threads,
        ["System.Threading.Tasks.ParallelLoopState"] = VerifierRules.Threads,
        ["System.Threading.Tasks.ParallelLoopResult"] = VerifierRules.Threads,
        ["System.Threading.Tasks.TaskFactory"] = VerifierRules.Threads,
        ["System.Threading.Tasks.TaskFactory`1"] = VerifierRules.Threads,
        ["System.Threading.Tasks.TaskScheduler"] = VerifierRules.Threads,
        ["System.Threading.Tasks.ConcurrentExclusiveSchedulerPair"] = VerifierRules.Threads,
        ["System.Threading.ExecutionContext"] = VerifierRules.SharedState,
        ["System.Threading.SynchronizationContext"] = VerifierRules.SharedState,
        ["System.IO.Compression.ZipFile"] = VerifierRules.FileSystem,
        ["System.IO.Compression.ZipFileExtensions"] = VerifierRules.FileSystem,
        ["System.Reflection.Assembly"] = VerifierRules.AssemblyLoading,
    };

    // The rule for a type that is not listed, by namespace (longest prefix first).
    private static readonly (string Prefix, VerifierRule Rule)[] NamespaceRules =
    [
        ("System.Reflection.Emit", VerifierRules.CodeGeneration),
        ("System.Linq.Expressions", VerifierRules.CodeGeneration),
        ("System.Runtime.Loader", VerifierRules.AssemblyLoading),
        ("System.Reflection", VerifierRules.Reflection),
        ("System.Runtime.InteropServices.Marshalling", VerifierRules.PInvoke),
        ("System.Runtime.InteropServices", VerifierRules.RawMemory),
        ("System.Runtime.CompilerServices", VerifierRules.UnsafeClass),
        ("System.Runtime.Intrinsics", VerifierRules.UnsafeClass),
        ("Microsoft.Win32.SafeHandles", VerifierRules.RawMemory),
        ("System.Security.Cryptography.X509Certificates", VerifierRules.FileSystem),
        ("System.IO", VerifierRules.FileSystem),
        ("System.Net", VerifierRules.Network),
        ("System.Threading", VerifierRules.Threads),
        ("System.Timers", VerifierRules.Threads),
        ("System.Text.Json.Serialization", VerifierRules.Reflection),
        ("System.ComponentModel", VerifierRules.Reflection),
        ("System.Security.Permissions", VerifierRules.Pointers),
        ("System.Runtime", VerifierRules.SharedState),
    ];

    // Members of allowed types that are refused. Key: the declaring type's full name.
    private static readonly Dictionary<string, Dictionary<string, VerifierRule>> DeniedMembers = new(StringComparer.Ordinal)
    {
        ["System.Threading.Tasks.Task"] = Members(VerifierRules.Threads, "Run", "get_Factory", "Start", "Delay", "Yield", "ContinueWith", "WaitAsync"),
        ["System.Threading.Tasks.Task`1"] = Members(VerifierRules.Threads, "get_Factory", "ContinueWith", "WaitAsync"),
        ["System.Threading.CancellationTokenSource"] = Members(VerifierRules.Threads, "CancelAfter", "CancelAsync"),
        ["System.Threading.SemaphoreSlim"] = Members(VerifierRules.Threads, "WaitAsync"),
        ["System.Globalization.CultureInfo"] = Members(VerifierRules.SharedState, "set_CurrentCulture", "set_CurrentUICulture",
            "set_DefaultThreadCurrentCulture", "set_DefaultThreadCurrentUICulture"),
        ["System.Text.Encoding"] = Members(VerifierRules.SharedState, "RegisterProvider"),
        ["System.Text.RegularExpressions.Regex"] = Members(VerifierRules.SharedState, "set_CacheSize"),
        ["System.Buffers.ArrayPool`1"] = Members(VerifierRules.SharedState, "get_Shared"),
        ["System.Buffers.MemoryPool`1"] = Members(VerifierRules.SharedState, "get_Shared"),
        ["System.IO.Path"] = Members(VerifierRules.FileSystem, "GetTempFileName", "Exists"),
        ["System.Exception"] = Members(VerifierRules.Reflection, "get_TargetSite"),
        ["System.Delegate"] = Members(VerifierRules.Reflection, "get_Method", "get_Target", "CreateDelegate", "DynamicInvoke"),
        ["System.MulticastDelegate"] = Members(VerifierRules.Reflection, "get_Method", "get_Target", "CreateDelegate", "DynamicInvoke"),
    };

    // Allowed types of which only the listed members may be used; the rule refuses the rest.
    private static readonly Dictionary<string, (HashSet<string> Members, VerifierRule Rule)> OnlyMembers = new(StringComparer.Ordinal)
    {
        ["System.Type"] = (Set("GetTypeFromHandle", "EmptyTypes", "op_Equality", "op_Inequality", "get_Name", "get_FullName", "get_Namespace",
            "ToString", "Equals", "GetHashCode", "IsAssignableFrom", "IsAssignableTo", "IsInstanceOfType", "get_IsValueType",
            "get_IsEnum", "get_IsArray", "get_IsGenericType", "get_IsClass", "get_IsInterface", "get_IsPrimitive", "get_IsAbstract",
            "get_IsSealed", "GetType", "GetGenericArguments", "GetElementType", "get_IsByRefLike"), VerifierRules.Reflection),
        ["System.Environment"] = (Set("get_NewLine", "get_TickCount", "get_TickCount64", "get_ProcessorCount",
            "get_CurrentManagedThreadId", "get_Is64BitProcess", "get_Is64BitOperatingSystem"), VerifierRules.ProcessControl),
        ["System.RuntimeTypeHandle"] = (Set(), VerifierRules.Reflection),
        ["System.RuntimeFieldHandle"] = (Set(), VerifierRules.Reflection),
        ["System.GC"] = (Set("KeepAlive", "SuppressFinalize", "ReRegisterForFinalize"), VerifierRules.SharedState),
        ["System.Threading.Thread"] = (Set("get_CurrentThread", "get_ManagedThreadId", "Sleep", "Yield", "SpinWait",
            "MemoryBarrier", "VolatileRead", "VolatileWrite", "get_IsThreadPoolThread", "get_IsBackground", "get_Name"), VerifierRules.Threads),
        ["System.Runtime.CompilerServices.RuntimeHelpers"] = (Set("InitializeArray", "CreateSpan", "GetSubArray",
            "IsReferenceOrContainsReferences", "EnsureSufficientExecutionStack", "TryEnsureSufficientExecutionStack",
            "GetHashCode", "Equals"), VerifierRules.UnsafeClass),
        ["System.Runtime.InteropServices.CollectionsMarshal"] = (Set("AsSpan", "SetCount"), VerifierRules.MarshalViews),
        ["System.Runtime.InteropServices.ImmutableCollectionsMarshal"] = (Set("AsImmutableArray"), VerifierRules.MarshalViews),
    };

    /// <summary>Judges a base-library type by its full name (nested types as <c>Outer+Inner</c>, generic
    /// definitions with their arity). Returns null when drivers may use it.</summary>
    public static VerifierRule? JudgeType(string fullName)
    {
        if (DeniedTypes.TryGetValue(fullName, out VerifierRule? denied))
        {
            return denied;
        }

        int plus = fullName.IndexOf('+', StringComparison.Ordinal);
        string outer = plus < 0 ? fullName : fullName[..plus];
        if (plus >= 0 && DeniedTypes.TryGetValue(outer, out denied))
        {
            return denied;
        }

        int dot = outer.LastIndexOf('.');
        string ns = dot < 0 ? "" : outer[..dot];
        if (AllowedTypes.Contains(outer) || Array.IndexOf(AllowedNamespaces, ns) >= 0)
        {
            return null;
        }

        foreach ((string prefix, VerifierRule rule) in NamespaceRules)
        {
            if (ns == prefix || ns.StartsWith(prefix + ".", StringComparison.Ordinal))
            {
                return rule;
            }
        }

        return VerifierRules.NotAllowed;
    }

    /// <summary>Judges a member of an allowed base-library type. Returns null when drivers may use it.</summary>
    /// <param name="declaringType">The full name of the generic definition of the member's declaring type.</param>
    /// <param name="member">The member.</param>
    public static VerifierRule? JudgeMember(string declaringType, MemberInfo member)
    {
        string name = member.Name;
        if (DeniedMembers.TryGetValue(declaringType, out Dictionary<string, VerifierRule>? denied) && denied.TryGetValue(name, out VerifierRule? rule))
        {
            return rule;
        }

        if (OnlyMembers.TryGetValue(declaringType, out (HashSet<string> Members, VerifierRule Rule) only) && !only.Members.Contains(name))
        {
            return only.Rule;
        }

        if ((name.Contains("Unsafe", StringComparison.Ordinal) && name != "AwaitUnsafeOnCompleted") || name.Contains("Dangerous", StringComparison.Ordinal))
        {
            return VerifierRules.UnsafeClass;
        }

        if (member is MethodBase method)
        {
            return JudgeOverload(declaringType, method);
        }

        return null;
    }

    // Overloads that differ in what they reach: a path where the others take a stream, a name where the others take
    // nothing, a timer where the others take none.
    private static VerifierRule? JudgeOverload(string declaringType, MethodBase method)
    {
        ParameterInfo[] parameters = method.GetParameters();
        bool firstIsString = parameters.Length > 0 && parameters[0].ParameterType.FullName == "System.String";
        if (declaringType is "System.IO.StreamReader" or "System.IO.StreamWriter" && method.IsConstructor && firstIsString)
        {
            return VerifierRules.FileSystem;
        }

        if (declaringType.StartsWith("System.Security.Cryptography.", StringComparison.Ordinal) && method.Name == "Create" && firstIsString)
        {
            return VerifierRules.Reflection;
        }

        if (declaringType == "System.Threading.CancellationTokenSource" && method.IsConstructor && parameters.Length > 0)
        {
            return VerifierRules.Threads;
        }

        // RunContinuationsAsynchronously sends the awaiting driver code to the thread pool.
        if (declaringType is "System.Threading.Tasks.TaskCompletionSource" or "System.Threading.Tasks.TaskCompletionSource`1"
            && method.IsConstructor && parameters.Any(p => p.ParameterType.FullName == "System.Threading.Tasks.TaskCreationOptions"))
        {
            return VerifierRules.Threads;
        }

        if (declaringType == "System.Activator" && !(method.IsGenericMethod && parameters.Length == 0))
        {
            return VerifierRules.Reflection;
        }

        return null;
    }

    private static Dictionary<string, VerifierRule> Members(VerifierRule rule, params string[] names)
    {
        var members = new Dictionary<string, VerifierRule>(StringComparer.Ordinal);
        foreach (string name in names)
        {
            members[name] = rule;
        }

        return members;
    }

    private static HashSet<string> Set(params string[] names) => new(names, StringComparer.Ordinal);
}
