# frozen_string_literal: true
#
# genvectors.rb: writes known-answer vectors made by a real peer, the Ruby
# aws-sdk-s3 gem's S3 Encryption Clients (Debian ruby-aws-sdk-s3 1.117), into
# ../vectors/*.json. No S3 server is needed: the clients run against a stubbed
# Aws::S3::Client and the PutObject requests they would send are captured
# (the object's body and x-amz-meta-* headers, and the instruction file).
#
#   ruby testvectors/ruby/genvectors.rb [OUTDIR]
#
# Each file holds a JSON array of cases:
#   {"name", "writer", "format": "v1|v2", "wrap", "storage": "metadata|instruction",
#    "aesKey": hex (AES wraps), "rsaPrivateKeyPEM": PEM (RSA wraps),
#    "description": {...}, "metadata": {k: v}, "instruction": {k: v} (instruction
#    storage only), "ciphertext": base64, "plaintext": base64}
# "metadata" holds the object's user metadata without the x-amz-meta- prefix.
#
# Master keys are kept across runs: the AES key and the 2048-bit RSA key are
# read back from the existing files when present and made only once.
# Plaintexts are deterministic; data keys and IVs are fresh on every run, so
# ciphertexts change when the files are regenerated.

require 'json'
require 'base64'
require 'openssl'
require 'stringio'
require 'aws-sdk-s3'

OUT = File.expand_path(ARGV[0] || File.join(__dir__, '..', 'vectors'))
SIZES = [0, 1, 17, 300, 70_000].freeze
DESCRIPTION = { 'purpose' => 'test-vector' }.freeze
WRITER_BASE = "ruby aws-sdk-s3 #{Aws::S3::GEM_VERSION} (aws-sdk-core #{Aws::CORE_GEM_VERSION}, " \
              "ruby #{RUBY_VERSION}, #{OpenSSL::OPENSSL_LIBRARY_VERSION})"

FILES = {
  'ruby-v2-aesgcm-metadata.json' => { format: 'v2', wrap: 'AES/GCM', storage: 'metadata' },
  'ruby-v2-aesgcm-instruction.json' => { format: 'v2', wrap: 'AES/GCM', storage: 'instruction' },
  'ruby-v2-rsaoaepsha1-metadata.json' => { format: 'v2', wrap: 'RSA-OAEP-SHA1', storage: 'metadata' },
  'ruby-v2-rsaoaepsha1-instruction.json' => { format: 'v2', wrap: 'RSA-OAEP-SHA1', storage: 'instruction' },
  'ruby-v1-aescbc-metadata.json' => { format: 'v1', wrap: 'AES/ECB/PKCS5Padding', storage: 'metadata' }
}.freeze

def existing_cases(file)
  path = File.join(OUT, file)
  File.exist?(path) ? JSON.parse(File.read(path)) : []
end

def find_existing(field)
  FILES.each_key do |f|
    existing_cases(f).each { |c| return c[field] if c[field] }
  end
  nil
end

def aes_key
  @aes_key ||= begin
    hex = find_existing('aesKey')
    hex ? [hex].pack('H*') : OpenSSL::Random.random_bytes(32)
  end
end

def rsa_key
  @rsa_key ||= begin
    pem = find_existing('rsaPrivateKeyPEM')
    pem ? OpenSSL::PKey::RSA.new(pem) : OpenSSL::PKey::RSA.new(2048)
  end
end

def plaintext(size)
  Random.new(size + 1).bytes(size)
end

# A stubbed S3 client that records every PutObject request it is sent.
def capturing_client(captured)
  c = Aws::S3::Client.new(stub_responses: true, region: 'us-east-1',
                          credentials: Aws::Credentials.new('stub', 'stub'))
  c.stub_responses(:put_object, lambda { |ctx|
    body = ctx.http_request.body
    body.rewind
    meta = {}
    ctx.http_request.headers.each do |k, v|
      meta[k.downcase.delete_prefix('x-amz-meta-')] = v if k.downcase.start_with?('x-amz-meta-')
    end
    captured << { key: ctx.params[:key], metadata: meta, body: body.read.b }
    {}
  })
  c
end

# Runs fn with $stderr silenced (the V1 client prints a deprecation notice).
def quietly
  saved = $stderr
  $stderr = StringIO.new
  yield
ensure
  $stderr = saved
end

def encryption_client(spec, s3)
  loc = spec[:storage] == 'instruction' ? :instruction_file : :metadata
  desc = JSON.generate(DESCRIPTION)
  if spec[:format] == 'v1'
    quietly do
      Aws::S3::Encryption::Client.new(client: s3, encryption_key: aes_key,
                                      materials_description: desc, envelope_location: loc)
    end
  else
    rsa = spec[:wrap] == 'RSA-OAEP-SHA1'
    Aws::S3::EncryptionV2::Client.new(client: s3, encryption_key: rsa ? rsa_key : aes_key,
                                      key_wrap_schema: rsa ? :rsa_oaep_sha1 : :aes_gcm,
                                      content_encryption_schema: :aes_gcm_no_padding,
                                      security_profile: :v2,
                                      materials_description: desc, envelope_location: loc)
  end
end

# Independent check of a captured case with the gem's own helpers and OpenSSL,
# so that a vector that fails in Go points at Go, not at the capture.
def self_check(spec, env, ciphertext, pt)
  if spec[:format] == 'v1'
    key = Aws::S3::Encryption::Utils.decrypt(aes_key, Base64.strict_decode64(env['x-amz-key']))
    c = OpenSSL::Cipher.new('aes-256-cbc').decrypt
    c.key = key
    c.iv = Base64.strict_decode64(env['x-amz-iv'])
    got = c.update(ciphertext) + c.final
  else
    wrapped = Base64.strict_decode64(env['x-amz-key-v2'])
    key = if spec[:wrap] == 'RSA-OAEP-SHA1'
            k, alg = Aws::S3::EncryptionV2::Utils.decrypt_rsa(rsa_key, wrapped)
            raise 'bad cek-alg in RSA wrap' unless alg == 'AES/GCM/NoPadding'
            k
          else
            Aws::S3::EncryptionV2::Utils.decrypt_aes_gcm(aes_key, wrapped, 'AES/GCM/NoPadding')
          end
    c = OpenSSL::Cipher.new('aes-256-gcm').decrypt
    c.key = key
    c.iv = Base64.strict_decode64(env['x-amz-iv'])
    c.auth_tag = ciphertext[-16, 16]
    c.auth_data = ''
    body = ciphertext[0...-16]
    got = (body.empty? ? ''.b : c.update(body)) + c.final
  end
  raise "self-check failed for #{spec.inspect} size #{pt.bytesize}" unless got.b == pt.b
end

def make_case(file, spec, size)
  captured = []
  s3 = capturing_client(captured)
  pt = plaintext(size)
  client = encryption_client(spec, s3)
  client.put_object(bucket: 'vectors', key: 'object', body: pt.dup)
  obj = captured.find { |c| c[:key] == 'object' } or raise 'no object PutObject captured'
  instr = captured.find { |c| c[:key] == 'object.instruction' }
  env = instr ? JSON.parse(instr[:body]) : obj[:metadata]
  self_check(spec, env, obj[:body], pt)

  kase = {
    'name' => "#{File.basename(file, '.json')}-#{size}",
    'writer' => "#{WRITER_BASE} #{spec[:format] == 'v1' ? 'Aws::S3::Encryption::Client' : 'Aws::S3::EncryptionV2::Client'}",
    'format' => spec[:format],
    'wrap' => spec[:wrap],
    'storage' => spec[:storage]
  }
  if spec[:wrap] == 'RSA-OAEP-SHA1'
    kase['rsaPrivateKeyPEM'] = rsa_key.to_pem
  else
    kase['aesKey'] = aes_key.unpack1('H*')
  end
  kase['description'] = DESCRIPTION
  kase['metadata'] = obj[:metadata].sort.to_h
  kase['instruction'] = env.sort.to_h if instr
  kase['ciphertext'] = Base64.strict_encode64(obj[:body])
  kase['plaintext'] = Base64.strict_encode64(pt)
  kase
end

Dir.mkdir(OUT) unless Dir.exist?(OUT)
# Resolve the master keys before any file is rewritten.
aes_key
rsa_key
FILES.each do |file, spec|
  cases = SIZES.map { |n| make_case(file, spec, n) }
  File.write(File.join(OUT, file), JSON.pretty_generate(cases) + "\n")
  puts "wrote #{File.join(OUT, file)} (#{cases.size} cases)"
end
