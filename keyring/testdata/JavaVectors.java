// JavaVectors produces and checks data-key wraps with the Java platform's own
// JCE (SunJCE / SunRsaSign), using the transformations the AWS S3 Encryption
// Clients for Java name for each wrap algorithm. It is not part of any build:
//
//   java JavaVectors.java gen > java_vectors.json
//       Fixed master keys (RSA keys generated once and printed), every wrap
//       algorithm, content algorithm and data key size.
//
//   java JavaVectors.java verify go_vectors.txt
//       Unwraps, with Java, wraps written by the Go keyring (see
//       TestWriteGoVectors in keyring/interop_test.go) and prints OK or fails.
//
// Written for this project; it shares no code with the AWS clients.

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Key;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;
import javax.crypto.spec.SecretKeySpec;

public class JavaVectors {
    static final SecureRandom RNG = new SecureRandom();
    static final HexFormat HEX = HexFormat.of();
    static final String[] CONTENT = {"AES/GCM/NoPadding", "115"};
    static final int[] SIZES = {16, 24, 32};
    static final OAEPParameterSpec OAEP_SHA1 =
        new OAEPParameterSpec("SHA-1", "MGF1", MGF1ParameterSpec.SHA1, PSource.PSpecified.DEFAULT);

    static byte[] pattern(int n, int start) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte) (start + i);
        return b;
    }

    static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) n += p.length;
        byte[] out = new byte[n];
        int off = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, off, p.length);
            off += p.length;
        }
        return out;
    }

    // ---- wraps, one per algorithm ----

    static byte[] aesGcm(byte[] master, byte[] dataKey, String contentAlg) throws Exception {
        byte[] iv = new byte[12];
        RNG.nextBytes(iv);
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
        c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(master, "AES"), new GCMParameterSpec(128, iv));
        c.updateAAD(contentAlg.getBytes(StandardCharsets.UTF_8));
        return concat(iv, c.doFinal(dataKey));
    }

    static byte[] rsaOaepSha1(Key pub, byte[] dataKey, String contentAlg) throws Exception {
        Cipher c = Cipher.getInstance("RSA/ECB/OAEPPadding");
        c.init(Cipher.WRAP_MODE, pub, OAEP_SHA1, RNG);
        byte[] packed = concat(new byte[] {(byte) dataKey.length}, dataKey,
            contentAlg.getBytes(StandardCharsets.UTF_8));
        return c.wrap(new SecretKeySpec(packed, "AES"));
    }

    static byte[] aesWrap(byte[] master, byte[] dataKey) throws Exception {
        Cipher c = Cipher.getInstance("AESWrap");
        c.init(Cipher.WRAP_MODE, new SecretKeySpec(master, "AES"));
        return c.wrap(new SecretKeySpec(dataKey, "AES"));
    }

    static byte[] aesEcb(byte[] master, byte[] dataKey) throws Exception {
        Cipher c = Cipher.getInstance("AES"); // = AES/ECB/PKCS5Padding
        c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(master, "AES"));
        return c.doFinal(dataKey);
    }

    static byte[] rsaOaepSha256Default(Key pub, byte[] dataKey) throws Exception {
        // No parameter spec: the provider's defaults, as the Java SDK v1 did.
        Cipher c = Cipher.getInstance("RSA/ECB/OAEPWithSHA-256AndMGF1Padding");
        c.init(Cipher.WRAP_MODE, pub, RNG);
        return c.wrap(new SecretKeySpec(dataKey, "AES"));
    }

    static byte[] rsaOaepSha256Mgf256(Key pub, byte[] dataKey) throws Exception {
        // What Bouncy Castle's provider does for the same transformation name.
        Cipher c = Cipher.getInstance("RSA/ECB/OAEPPadding");
        c.init(Cipher.WRAP_MODE, pub, new OAEPParameterSpec("SHA-256", "MGF1",
            MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT), RNG);
        return c.wrap(new SecretKeySpec(dataKey, "AES"));
    }

    static byte[] rsaPkcs1(Key pub, byte[] dataKey) throws Exception {
        Cipher c = Cipher.getInstance("RSA"); // = RSA/ECB/PKCS1Padding
        c.init(Cipher.ENCRYPT_MODE, pub);
        return c.doFinal(dataKey);
    }

    // ---- gen ----

    static final List<String> out = new ArrayList<>();

    static void vec(String keyring, String wrapAlg, String contentAlg, byte[] wrapped, byte[] dataKey) {
        out.add(String.format(
            "    {\"keyring\": \"%s\", \"wrapAlg\": \"%s\", \"contentAlg\": \"%s\", \"wrapped\": \"%s\", \"dataKey\": \"%s\"}",
            keyring, wrapAlg, contentAlg, Base64.getEncoder().encodeToString(wrapped), HEX.formatHex(dataKey)));
    }

    static void gen() throws Exception {
        byte[] aes256 = pattern(32, 0x00);
        byte[] aes128 = pattern(16, 0x40);
        KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
        g.initialize(2048, RNG);
        KeyPair rsa = g.generateKeyPair();
        g.initialize(1024, RNG);
        KeyPair rsa1024 = g.generateKeyPair();

        for (int size : SIZES) {
            byte[] dk = pattern(size, 0x80 + size);
            for (String ca : CONTENT) {
                vec("aes256", "AES/GCM", ca, aesGcm(aes256, dk, ca), dk);
                vec("aes128", "AES/GCM", ca, aesGcm(aes128, dk, ca), dk);
                vec("rsa", "RSA-OAEP-SHA1", ca, rsaOaepSha1(rsa.getPublic(), dk, ca), dk);
                vec("rsa1024", "RSA-OAEP-SHA1", ca, rsaOaepSha1(rsa1024.getPublic(), dk, ca), dk);
            }
            vec("aes256", "AESWrap", "", aesWrap(aes256, dk), dk);
            vec("aes128", "AESWrap", "", aesWrap(aes128, dk), dk);
            vec("aes256", "AES", "", aesEcb(aes256, dk), dk);
            vec("aes128", "AES", "", aesEcb(aes128, dk), dk);
            vec("rsa", "RSA/ECB/OAEPWithSHA-256AndMGF1Padding", "", rsaOaepSha256Default(rsa.getPublic(), dk), dk);
            vec("rsa", "RSA/ECB/OAEPWithSHA-256AndMGF1Padding", "", rsaOaepSha256Mgf256(rsa.getPublic(), dk), dk);
            vec("rsa", "RSA", "", rsaPkcs1(rsa.getPublic(), dk), dk);
            vec("rsa1024", "RSA", "", rsaPkcs1(rsa1024.getPublic(), dk), dk);
        }

        StringBuilder sb = new StringBuilder();
        sb.append("{\n");
        sb.append("  \"generator\": \"keyring/testdata/JavaVectors.java on ")
          .append(System.getProperty("java.vendor")).append(' ')
          .append(System.getProperty("java.version")).append("\",\n");
        sb.append("  \"aes256\": \"").append(HEX.formatHex(aes256)).append("\",\n");
        sb.append("  \"aes128\": \"").append(HEX.formatHex(aes128)).append("\",\n");
        sb.append("  \"rsa\": \"").append(Base64.getEncoder().encodeToString(rsa.getPrivate().getEncoded())).append("\",\n");
        sb.append("  \"rsa1024\": \"").append(Base64.getEncoder().encodeToString(rsa1024.getPrivate().getEncoded())).append("\",\n");
        sb.append("  \"vectors\": [\n").append(String.join(",\n", out)).append("\n  ]\n}\n");
        System.out.print(sb);
    }

    // ---- verify ----

    // Line format, fields separated by spaces:
    //   key aes <hex>            master key for AES lines
    //   key rsa <base64 PKCS#8>  private key for RSA lines
    //   wrap <wrapAlg> <contentAlg> <base64 wrapped> <hex data key>
    static void verify(String file) throws Exception {
        byte[] aesKey = null;
        PrivateKey rsaKey = null;
        int n = 0;
        for (String line : Files.readAllLines(Path.of(file))) {
            if (line.isBlank()) continue;
            String[] f = line.trim().split(" ");
            if (f[0].equals("key") && f[1].equals("aes")) {
                aesKey = HEX.parseHex(f[2]);
                continue;
            }
            if (f[0].equals("key") && f[1].equals("rsa")) {
                rsaKey = KeyFactory.getInstance("RSA").generatePrivate(
                    new PKCS8EncodedKeySpec(Base64.getDecoder().decode(f[2])));
                continue;
            }
            String alg = f[1], ca = f[2];
            byte[] wrapped = Base64.getDecoder().decode(f[3]);
            byte[] want = HEX.parseHex(f[4]);
            byte[] got;
            if (alg.equals("AES/GCM")) {
                Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
                c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(aesKey, "AES"),
                    new GCMParameterSpec(128, wrapped, 0, 12));
                c.updateAAD(ca.getBytes(StandardCharsets.UTF_8));
                got = c.doFinal(wrapped, 12, wrapped.length - 12);
            } else if (alg.equals("RSA-OAEP-SHA1")) {
                Cipher c = Cipher.getInstance("RSA/ECB/OAEPPadding");
                c.init(Cipher.UNWRAP_MODE, rsaKey, OAEP_SHA1);
                byte[] packed = c.unwrap(wrapped, "AES", Cipher.SECRET_KEY).getEncoded();
                int len = packed[0];
                byte[] name = Arrays.copyOfRange(packed, 1 + len, packed.length);
                if (!Arrays.equals(name, ca.getBytes(StandardCharsets.UTF_8))) {
                    throw new IllegalStateException("content algorithm mismatch in line " + line);
                }
                got = Arrays.copyOfRange(packed, 1, 1 + len);
            } else {
                throw new IllegalStateException("unknown wrap algorithm " + alg);
            }
            if (!Arrays.equals(got, want)) {
                throw new IllegalStateException("data key mismatch in line " + line);
            }
            n++;
        }
        System.out.println("OK " + n + " wraps unwrapped by Java");
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 1 && args[0].equals("gen")) {
            gen();
        } else if (args.length == 2 && args[0].equals("verify")) {
            verify(args[1]);
        } else {
            System.err.println("usage: java JavaVectors.java gen | verify <file>");
            System.exit(2);
        }
    }
}
