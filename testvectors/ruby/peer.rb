# frozen_string_literal: true
#
# peer.rb: a real, independent S3 Encryption Client peer for the cross-client
# tests, built on the Ruby aws-sdk-s3 gem (Debian's ruby-aws-sdk-s3, 1.117).
#
# Usage:
#   ruby peer.rb put-v2 --bucket B --key K --in FILE  (--aes-key-hex HEX | --rsa-key-file PEM)
#                       [--storage metadata|instruction] [--matdesc JSON]
#   ruby peer.rb get-v2 --bucket B --key K --out FILE (--aes-key-hex HEX | --rsa-key-file PEM)
#                       [--storage metadata|instruction] [--legacy]
#   ruby peer.rb put-v1 --bucket B --key K --in FILE --aes-key-hex HEX
#                       [--storage metadata|instruction] [--matdesc JSON]
#   ruby peer.rb put-kms --bucket B --key K --in FILE --kms-key-id ID
#                       [--storage metadata|instruction] [--kms-context JSON]
#   ruby peer.rb get-kms --bucket B --key K --out FILE (--kms-key-id ID | --kms-any-key)
#                       [--storage metadata|instruction] [--kms-context JSON]
#
# put-v2/get-v2 use Aws::S3::EncryptionV2::Client (security_profile :v2, or
# :v2_and_legacy with --legacy; content_encryption_schema :aes_gcm_no_padding;
# key_wrap_schema :aes_gcm for an AES key or :rsa_oaep_sha1 for an RSA private
# key). put-v1 uses the legacy Aws::S3::Encryption::Client (AES/CBC content,
# AES/ECB key wrap) and must never be used but to make legacy test objects.
#
# put-kms/get-kms use Aws::S3::EncryptionV2::Client with a KMS key
# (key_wrap_schema :kms_context, security_profile :v2) and an Aws::KMS::Client
# pointed at the KMS server in S3ENVELOPE_KMS_ENDPOINT. --kms-context is the
# per-request encryption context (:kms_encryption_context), a JSON object of
# strings; Ruby stores it with aws:x-amz-cek-alg in x-amz-matdesc and, on
# get, requires the stored context to be exactly it plus aws:x-amz-cek-alg
# (no --kms-context: none). --kms-any-key reads with whichever KMS key the
# wrapped key names (kms_key_id: :kms_allow_decrypt_with_any_cmk).
#
# The S3 endpoint and credentials come from the environment:
#   S3ENVELOPE_S3_ENDPOINT, S3ENVELOPE_S3_ACCESS_KEY, S3ENVELOPE_S3_SECRET_KEY,
#   S3ENVELOPE_S3_REGION (default us-east-1).
# and for KMS: S3ENVELOPE_KMS_ENDPOINT, S3ENVELOPE_KMS_REGION (default
# us-east-1). The test KMS server (local-kms) checks no signatures, so the
# KMS client signs with fixed dummy credentials.
# Exit status 0 on success; on failure the error goes to stderr, exit 1.

require 'optparse'
require 'openssl'
require 'stringio'
require 'json'
require 'aws-sdk-s3'
require 'aws-sdk-kms'

def die(msg)
  warn "peer.rb: #{msg}"
  exit 1
end

def env!(name)
  v = ENV[name]
  die("#{name} is not set (run ./scripts/test)") if v.nil? || v.empty?
  v
end

def s3_client
  Aws::S3::Client.new(
    endpoint: env!('S3ENVELOPE_S3_ENDPOINT'),
    region: ENV.fetch('S3ENVELOPE_S3_REGION', 'us-east-1'),
    force_path_style: true,
    credentials: Aws::Credentials.new(env!('S3ENVELOPE_S3_ACCESS_KEY'),
                                      env!('S3ENVELOPE_S3_SECRET_KEY'))
  )
end

def master_key(opts)
  if opts[:aes_key_hex] && opts[:rsa_key_file]
    die('give one of --aes-key-hex and --rsa-key-file, not both')
  end
  if opts[:aes_key_hex]
    key = [opts[:aes_key_hex]].pack('H*')
    die('--aes-key-hex must be 16, 24 or 32 bytes') unless [16, 24, 32].include?(key.bytesize)
    [key, :aes_gcm]
  elsif opts[:rsa_key_file]
    [OpenSSL::PKey::RSA.new(File.read(opts[:rsa_key_file])), :rsa_oaep_sha1]
  else
    die('need --aes-key-hex or --rsa-key-file')
  end
end

def location(opts)
  case opts[:storage]
  when nil, 'metadata' then :metadata
  when 'instruction' then :instruction_file
  else die("unknown --storage #{opts[:storage].inspect}")
  end
end

def v2_client(opts)
  key, wrap = master_key(opts)
  Aws::S3::EncryptionV2::Client.new(
    client: s3_client,
    encryption_key: key,
    materials_description: opts[:matdesc] || '{}',
    key_wrap_schema: wrap,
    content_encryption_schema: :aes_gcm_no_padding,
    security_profile: opts[:legacy] ? :v2_and_legacy : :v2,
    envelope_location: location(opts)
  )
end

# Runs the block with $stderr silenced: the legacy client prints a deprecation
# notice (with a backtrace) on every construction.
def quietly
  saved = $stderr
  $stderr = StringIO.new
  yield
ensure
  $stderr = saved
end

def v1_client(opts)
  key, wrap = master_key(opts)
  die('put-v1 supports only an AES key (--aes-key-hex)') unless wrap == :aes_gcm
  quietly do
    Aws::S3::Encryption::Client.new(
      client: s3_client,
      encryption_key: key,
      materials_description: opts[:matdesc] || '{}',
      envelope_location: location(opts)
    )
  end
end

def kms_client
  Aws::KMS::Client.new(
    endpoint: env!('S3ENVELOPE_KMS_ENDPOINT'),
    region: ENV.fetch('S3ENVELOPE_KMS_REGION', 'us-east-1'),
    credentials: Aws::Credentials.new('AKIDLOCALKMS', 'local-kms-checks-no-signatures')
  )
end

def kms_client_v2(opts)
  key_id = if opts[:kms_any_key]
             die('give one of --kms-key-id and --kms-any-key, not both') if opts[:kms_key_id]
             :kms_allow_decrypt_with_any_cmk
           else
             opts[:kms_key_id] || die('need --kms-key-id or --kms-any-key')
           end
  Aws::S3::EncryptionV2::Client.new(
    client: s3_client,
    kms_key_id: key_id,
    kms_client: kms_client,
    key_wrap_schema: :kms_context,
    content_encryption_schema: :aes_gcm_no_padding,
    security_profile: :v2,
    envelope_location: location(opts)
  )
end

# kms_context returns the --kms-context JSON as a Hash of strings, or nil.
def kms_context(opts)
  return nil unless opts[:kms_context]

  ctx = JSON.parse(opts[:kms_context])
  unless ctx.is_a?(Hash) && ctx.all? { |k, v| k.is_a?(String) && v.is_a?(String) }
    die('--kms-context must be a JSON object of strings')
  end
  ctx
end

cmd = ARGV.shift
opts = {}
OptionParser.new do |o|
  o.on('--bucket B') { |v| opts[:bucket] = v }
  o.on('--key K') { |v| opts[:key] = v }
  o.on('--in FILE') { |v| opts[:in] = v }
  o.on('--out FILE') { |v| opts[:out] = v }
  o.on('--aes-key-hex HEX') { |v| opts[:aes_key_hex] = v }
  o.on('--rsa-key-file PEM') { |v| opts[:rsa_key_file] = v }
  o.on('--storage S') { |v| opts[:storage] = v }
  o.on('--matdesc JSON') { |v| opts[:matdesc] = v }
  o.on('--legacy') { opts[:legacy] = true }
  o.on('--kms-key-id ID') { |v| opts[:kms_key_id] = v }
  o.on('--kms-any-key') { opts[:kms_any_key] = true }
  o.on('--kms-context JSON') { |v| opts[:kms_context] = v }
end.parse!(ARGV)
die("unexpected arguments: #{ARGV.join(' ')}") unless ARGV.empty?
die('need --bucket and --key') unless opts[:bucket] && opts[:key]

begin
  case cmd
  when 'put-v2', 'put-v1'
    die('need --in FILE') unless opts[:in]
    client = cmd == 'put-v2' ? v2_client(opts) : v1_client(opts)
    File.open(opts[:in], 'rb') do |f|
      client.put_object(bucket: opts[:bucket], key: opts[:key], body: f)
    end
  when 'get-v2'
    die('need --out FILE') unless opts[:out]
    # The gem writes each decrypted chunk to response_target as it arrives
    # and checks the GCM tag only at the end: a refused object leaves its
    # unauthenticated plaintext in the file (multipart_test.go shows it).
    v2_client(opts).get_object(bucket: opts[:bucket], key: opts[:key],
                               response_target: opts[:out])
  when 'put-kms'
    die('need --in FILE') unless opts[:in]
    die('put-kms needs --kms-key-id') unless opts[:kms_key_id]
    params = { bucket: opts[:bucket], key: opts[:key] }
    ctx = kms_context(opts)
    params[:kms_encryption_context] = ctx if ctx
    File.open(opts[:in], 'rb') do |f|
      kms_client_v2(opts).put_object(params.merge(body: f))
    end
  when 'get-kms'
    die('need --out FILE') unless opts[:out]
    params = { bucket: opts[:bucket], key: opts[:key], response_target: opts[:out] }
    ctx = kms_context(opts)
    params[:kms_encryption_context] = ctx if ctx
    kms_client_v2(opts).get_object(params)
  else
    die("unknown command #{cmd.inspect} (put-v2, get-v2, put-v1, put-kms, get-kms)")
  end
rescue StandardError => e
  die("#{cmd} #{opts[:bucket]}/#{opts[:key]}: #{e.class}: #{e.message}")
end
