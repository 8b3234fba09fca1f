package dev.contree.sandbox;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.RecordComponent;
import java.util.Collection;

/**
 * Writes records, collections, strings, integers and booleans as JSON: enough for {@link RuntimeSpec}, and small
 * enough to check by reading. A record becomes an object with its components in declaration order, null ones left
 * out.
 *
 * <p>Strings carry hostile text (environment values and paths come from clients), so escaping follows RFC 8259
 * §7 strictly and then some: {@code "} and {@code \}, every control character below U+0020 and U+007F, and every
 * non-ASCII UTF-16 unit as {@code \}{@code uXXXX}. The output is pure ASCII: no encoding can change it, and a
 * surrogate pair stays a pair (a lone surrogate is passed on escaped, for the reader to replace).
 */
final class JsonWriter {
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private JsonWriter() {}

    static String toJson(Object value) {
        StringBuilder out = new StringBuilder(4096);
        write(out, value);
        return out.toString();
    }

    private static void write(StringBuilder out, Object value) {
        switch (value) {
            case null -> out.append("null");
            case String s -> string(out, s);
            case Boolean b -> out.append(b);
            case Integer n -> out.append(n);
            case Long n -> out.append(n);
            case Short n -> out.append(n);
            case Byte n -> out.append(n);
            case Collection<?> c -> {
                out.append('[');
                boolean first = true;
                for (Object o : c) {
                    if (!first) out.append(',');
                    first = false;
                    write(out, o);
                }
                out.append(']');
            }
            case Record r -> record(out, r);
            default -> throw new IllegalArgumentException("no JSON form for " + value.getClass().getName());
        }
    }

    private static void record(StringBuilder out, Record r) {
        out.append('{');
        boolean first = true;
        for (Component c : COMPONENTS.get(r.getClass())) {
            Object v;
            try {
                v = c.accessor().invoke(r);
            } catch (Throwable e) {
                throw new IllegalStateException("cannot read " + r.getClass().getSimpleName() + "." + c.name(), e);
            }
            if (v == null) continue;
            if (!first) out.append(',');
            first = false;
            out.append(c.key());
            write(out, v);
        }
        out.append('}');
    }

    /** A record component: its key written once ({@code "name":}) and its accessor as an (Object)Object handle. */
    private record Component(String name, String key, MethodHandle accessor) {}

    /**
     * Per record class, looked up once: {@code getRecordComponents()} copies its array and {@code getAccessor()} hands
     * out a new Method whose first invoke builds an accessor, about half a millisecond per spec when done each time.
     */
    private static final ClassValue<Component[]> COMPONENTS = new ClassValue<>() {
        @Override
        protected Component[] computeValue(Class<?> type) {
            RecordComponent[] rc = type.getRecordComponents();
            Component[] out = new Component[rc.length];
            for (int i = 0; i < rc.length; i++) {
                try {
                    MethodHandle h = MethodHandles.lookup().unreflect(rc[i].getAccessor())
                            .asType(MethodType.methodType(Object.class, Object.class));
                    StringBuilder key = new StringBuilder();
                    string(key, rc[i].getName());
                    out[i] = new Component(rc[i].getName(), key.append(':').toString(), h);
                } catch (IllegalAccessException e) {
                    throw new IllegalStateException("cannot read " + type.getSimpleName() + "." + rc[i].getName(), e);
                }
            }
            return out;
        }
    };

    private static void string(StringBuilder out, String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            switch (ch) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (ch < 0x20 || ch >= 0x7f) {
                        out.append("\\u").append(HEX[ch >> 12 & 0xf]).append(HEX[ch >> 8 & 0xf])
                                .append(HEX[ch >> 4 & 0xf]).append(HEX[ch & 0xf]);
                    } else {
                        out.append(ch);
                    }
                }
            }
        }
        out.append('"');
    }
}
