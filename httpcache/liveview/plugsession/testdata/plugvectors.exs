# plugvectors.exs: known answers for package plugsession, computed with the
# algorithms of Plug and Plug.Crypto, transcribed below from their source.
#
# Run (Elixir >= 1.14 on Erlang/OTP >= 24, no Mix project, no Hex packages):
#
#     elixir httpcache/liveview/plugsession/testdata/plugvectors.exs > httpcache/liveview/plugsession/testdata/vectors.json
#
# Plug and Plug.Crypto are not packaged by Debian, so the functions used here
# are transcribed from their source (the transcription keeps the function
# names, and only replaces :crypto.strong_rand_bytes/1 by fixed inputs):
#
#   * plug_crypto v2.x lib/plug/crypto/key_generator.ex (Plug.Crypto.KeyGenerator;
#     the pure-Elixir PBKDF2 of v1.x, checked against :crypto.pbkdf2_hmac/5 that
#     v2.x calls on OTP >= 24.2)
#   * plug_crypto lib/plug/crypto/message_verifier.ex (Plug.Crypto.MessageVerifier)
#   * plug_crypto v2.x lib/plug/crypto/message_encryptor.ex
#     (Plug.Crypto.MessageEncryptor: XChaCha20-Poly1305 "XCP." tokens, and the
#     decryption of v1.x "A128GCM" tokens) and v1.2 of the same file (the
#     A128GCM encryption, AES-GCM key wrap of RFC 7518 §4.7)
#   * plug_crypto lib/plug/crypto.ex (Plug.Crypto.mask/2, masked_compare/3)
#   * plug lib/plug/csrf_protection.ex (Plug.CSRFProtection: @token_size 18,
#     mask/1, valid_masked_token?/3, get_csrf_token_for/1)
#   * plug lib/plug/session/cookie.ex (Plug.Session.COOKIE put/3, get/3 with
#     :external_term_format, i.e. :erlang.term_to_binary/1)
#   * plug lib/plug/conn/cookies.ex (Plug.Conn.Cookies.encode/2, decode/1)
#
# Every secret, salt, token, mask and nonce below is fixed, so the output is
# the same on every run.
#
# The other direction (Plug accepts what Go writes):
#
#     PLUGSESSION_CHECK=/tmp/go-made.txt go test -run TestWriteElixirCheck ./httpcache/liveview/plugsession
#     elixir httpcache/liveview/plugsession/testdata/plugvectors.exs check /tmp/go-made.txt
#
# reads the session cookies and masked tokens the Go package made and
# checks them with Plug.Session.COOKIE.get/3 and
# Plug.CSRFProtection.valid_state_and_csrf_token?/2 as transcribed here.

defmodule KG do
  # Plug.Crypto.KeyGenerator.generate/3 (iterations 1000, length 32, :sha256 defaults)
  def generate(secret, salt, opts \\ []) do
    iterations = Keyword.get(opts, :iterations, 1000)
    length = Keyword.get(opts, :length, 32)
    digest = Keyword.get(opts, :digest, :sha256)
    key = generate(hmac_fun(digest, secret), salt, iterations, length, 1, [], 0)
    ^key = :crypto.pbkdf2_hmac(digest, secret, salt, iterations, length)
    key
  end

  defp generate(_fun, _salt, _iterations, max_length, _block_index, acc, length)
       when length >= max_length do
    acc |> IO.iodata_to_binary() |> binary_part(0, max_length)
  end

  defp generate(fun, salt, iterations, max_length, block_index, acc, length) do
    initial = fun.(<<salt::binary, block_index::integer-size(32)>>)
    block = iterate(fun, iterations - 1, initial, initial)
    length = byte_size(block) + length
    generate(fun, salt, iterations, max_length, block_index + 1, [acc | block], length)
  end

  defp iterate(_fun, 0, _prev, acc), do: acc

  defp iterate(fun, iteration, prev, acc) do
    next = fun.(prev)
    iterate(fun, iteration - 1, next, :crypto.exor(next, acc))
  end

  defp hmac_fun(digest, key), do: &:crypto.mac(:hmac, digest, key, &1)
end

defmodule MV do
  # Plug.Crypto.MessageVerifier
  def sign(message, secret, digest_type \\ :sha256) do
    protected = hmac_sha2_to_protected(digest_type)
    plain_text = signing_input(protected, message)
    signature = :crypto.mac(:hmac, digest_type, secret, plain_text)
    plain_text <> "." <> Base.url_encode64(signature, padding: false)
  end

  def verify(signed, key) do
    case decode_token(signed) do
      {protected, payload, plain_text, signature} when protected in ["HS256", "HS384", "HS512"] ->
        digest_type = hmac_sha2_to_digest_type(protected)
        challenge = :crypto.mac(:hmac, digest_type, key, plain_text)
        if challenge == signature, do: {:ok, payload}, else: :error

      _ ->
        :error
    end
  end

  defp hmac_sha2_to_protected(:sha256), do: "HS256"
  defp hmac_sha2_to_protected(:sha384), do: "HS384"
  defp hmac_sha2_to_protected(:sha512), do: "HS512"
  defp hmac_sha2_to_digest_type("HS256"), do: :sha256
  defp hmac_sha2_to_digest_type("HS384"), do: :sha384
  defp hmac_sha2_to_digest_type("HS512"), do: :sha512

  defp decode_token(token) do
    with [protected, payload, signature] <- String.split(token, ".", parts: 3),
         plain_text = [protected, ?., payload],
         {:ok, protected} <- Base.url_decode64(protected, padding: false),
         {:ok, payload} <- Base.url_decode64(payload, padding: false),
         {:ok, signature} <- Base.url_decode64(signature, padding: false) do
      {protected, payload, plain_text, signature}
    else
      _ -> :error
    end
  end

  defp signing_input(protected, payload) do
    Base.url_encode64(protected, padding: false) <> "." <> Base.url_encode64(payload, padding: false)
  end
end

defmodule ME do
  # Plug.Crypto.MessageEncryptor v2.x encrypt/4 with the random iv made a parameter.
  def encrypt_xcp(message, aad \\ "A128GCM", secret, iv) when bit_size(secret) == 256 and byte_size(iv) == 24 do
    {subkey, nonce} = xchacha20_subkey_and_nonce(secret, iv)
    {cipher_text, cipher_tag} = block_encrypt(:chacha20_poly1305, subkey, nonce, {aad, message})
    "XCP." <> Base.url_encode64(iv <> cipher_tag <> cipher_text, padding: false)
  end

  # Plug.Crypto.MessageEncryptor v1.2 aes128_gcm_encrypt/3 with the random
  # CEK, iv and key-wrap iv made parameters.
  def encrypt_a128gcm(plain_text, secret, sign_secret, key, iv, wrap_iv) do
    aad = "A128GCM"
    {cipher_text, cipher_tag} = block_encrypt(:aes_gcm, key, iv, {aad, plain_text})
    {wrapped, wrap_tag} = block_encrypt(:aes_gcm, secret, wrap_iv, {sign_secret, key})
    encrypted_key = wrapped <> wrap_tag <> wrap_iv
    Enum.map_join([aad, encrypted_key, iv, cipher_text, cipher_tag], ".", &Base.url_encode64(&1, padding: false))
  end

  # Plug.Crypto.MessageEncryptor v2.x decrypt/4
  def decrypt(encrypted, aad \\ "A128GCM", secret, sign_secret), do: unguarded_decrypt(encrypted, aad, secret, sign_secret)

  defp unguarded_decrypt("XCP." <> iv_cipher_text_cipher_tag, aad, secret, _sign_secret) do
    with {:ok, <<iv::192-bits, cipher_tag::128-bits, cipher_text::binary>>} <-
           Base.url_decode64(iv_cipher_text_cipher_tag, padding: false),
         {subkey, nonce} = xchacha20_subkey_and_nonce(secret, iv),
         plain_text when is_binary(plain_text) <-
           block_decrypt(:chacha20_poly1305, subkey, nonce, {aad, cipher_text, cipher_tag}) do
      {:ok, plain_text}
    else
      _ -> :error
    end
  end

  defp unguarded_decrypt("QTEyOEdDTQ." <> rest, aad, secret, sign_secret) do
    with [encrypted_key, iv, cipher_text, cipher_tag] <- :binary.split(rest, ".", [:global]),
         {:ok, encrypted_key} <- Base.url_decode64(encrypted_key, padding: false),
         {:ok, iv} when bit_size(iv) === 96 <- Base.url_decode64(iv, padding: false),
         {:ok, cipher_text} <- Base.url_decode64(cipher_text, padding: false),
         {:ok, cipher_tag} when bit_size(cipher_tag) === 128 <- Base.url_decode64(cipher_tag, padding: false),
         {:ok, key} <- aes_gcm_key_unwrap(encrypted_key, secret, sign_secret),
         plain_text when is_binary(plain_text) <- block_decrypt(:aes_gcm, key, iv, {aad, cipher_text, cipher_tag}) do
      {:ok, plain_text}
    else
      _ -> :error
    end
  end

  defp unguarded_decrypt(_rest, _aad, _secret, _sign_secret), do: :error

  defp block_encrypt(cipher, key, iv, {aad, payload}) do
    cipher = cipher_alias(cipher, bit_size(key))
    :crypto.crypto_one_time_aead(cipher, key, iv, payload, aad, true)
  end

  defp block_decrypt(cipher, key, iv, {aad, payload, tag}) do
    cipher = cipher_alias(cipher, bit_size(key))
    :crypto.crypto_one_time_aead(cipher, key, iv, payload, aad, tag, false)
  end

  defp cipher_alias(:aes_gcm, 128), do: :aes_128_gcm
  defp cipher_alias(:aes_gcm, 192), do: :aes_192_gcm
  defp cipher_alias(:aes_gcm, 256), do: :aes_256_gcm
  defp cipher_alias(other, _), do: other

  defp xchacha20_subkey_and_nonce(<<key::256-bits>>, <<nonce0::128-bits, nonce1::64-bits>>) do
    {hchacha20(key, nonce0), <<0::32, nonce1::64-bits>>}
  end

  def hchacha20(<<key::256-bits>>, <<nonce::128-bits>>) do
    # Plug blinds the keystream with a random mask; the result does not depend on it.
    mask = <<mask_h::128-bits, _::256-bits, mask_t::128-bits>> = :binary.copy(<<0x5A>>, 64)

    <<state_2h::128-bits, _::256-bits, state_2t::128-bits>> =
      :crypto.crypto_one_time(:chacha20, key, nonce, mask, true)

    <<x00::32-unsigned-little-integer, x01::32-unsigned-little-integer,
      x02::32-unsigned-little-integer, x03::32-unsigned-little-integer,
      x12::32-unsigned-little-integer, x13::32-unsigned-little-integer,
      x14::32-unsigned-little-integer, x15::32-unsigned-little-integer>> =
      :crypto.exor(<<mask_h::128-bits, mask_t::128-bits>>, <<state_2h::128-bits, state_2t::128-bits>>)

    <<y00::32-unsigned-little-integer, y01::32-unsigned-little-integer,
      y02::32-unsigned-little-integer, y03::32-unsigned-little-integer,
      y12::32-unsigned-little-integer, y13::32-unsigned-little-integer,
      y14::32-unsigned-little-integer, y15::32-unsigned-little-integer>> =
      <<"expand 32-byte k", nonce::128-bits>>

    <<x00 - y00::32-unsigned-little-integer, x01 - y01::32-unsigned-little-integer,
      x02 - y02::32-unsigned-little-integer, x03 - y03::32-unsigned-little-integer,
      x12 - y12::32-unsigned-little-integer, x13 - y13::32-unsigned-little-integer,
      x14 - y14::32-unsigned-little-integer, x15 - y15::32-unsigned-little-integer>>
  end

  defp aes_gcm_key_unwrap(wrapped_cek, secret, sign_secret) do
    case wrapped_cek do
      <<cipher_text::128-bitstring, cipher_tag::128-bitstring, iv::96-bitstring>> ->
        block_decrypt(:aes_gcm, secret, iv, {sign_secret, cipher_text, cipher_tag})

      <<cipher_text::192-bitstring, cipher_tag::128-bitstring, iv::96-bitstring>> ->
        block_decrypt(:aes_gcm, secret, iv, {sign_secret, cipher_text, cipher_tag})

      <<cipher_text::256-bitstring, cipher_tag::128-bitstring, iv::96-bitstring>> ->
        block_decrypt(:aes_gcm, secret, iv, {sign_secret, cipher_text, cipher_tag})

      _ ->
        :error
    end
    |> case do
      cek when bit_size(cek) in [128, 192, 256] -> {:ok, cek}
      _ -> :error
    end
  end
end

defmodule CSRF do
  # Plug.CSRFProtection
  @token_size 18
  @encoded_token_size 24
  @double_encoded_token_size 32

  def generate_token(random18) when byte_size(random18) == @token_size, do: Base.url_encode64(random18)

  # mask/1 with the random mask made a parameter (mask = generate_token()).
  def mask(token, mask), do: Base.url_encode64(:crypto.exor(token, mask)) <> mask

  def valid_state_and_csrf_token?(state, csrf_token) do
    with <<state_token::@encoded_token_size-binary>> <- state,
         <<user_token::@double_encoded_token_size-binary, mask::@encoded_token_size-binary>> <- csrf_token do
      valid_masked_token?(state_token, user_token, mask)
    else
      _ -> false
    end
  end

  defp valid_masked_token?(csrf_token, user_token, mask) do
    with :error <- Base.url_decode64(user_token),
         :error <- Base.decode64(user_token) do
      false
    else
      {:ok, user_token} -> masked_compare(csrf_token, user_token, mask)
    end
  end

  # Plug.Crypto.masked_compare/3
  defp masked_compare(left, right, mask) do
    byte_size(left) == byte_size(right) and byte_size(right) == byte_size(mask) and
      :crypto.exor(right, mask) == left
  end

  # get_csrf_token_for/1 for a URL with a host, random token made a parameter.
  def token_for_host(secret_key_base, unmasked, random_token, host) do
    message = random_token <> host
    key = KG.generate(secret_key_base, unmasked)
    MV.sign(message, key)
  end

  def valid_host_token?(secret_key_base, csrf_token, "SFMyNTY." <> _ = signed_user_token, host) do
    key = KG.generate(secret_key_base, csrf_token)

    case MV.verify(signed_user_token, key) do
      {:ok, <<_::@encoded_token_size-binary, ^host::binary>>} -> true
      _ -> false
    end
  end
end

defmodule Cookies do
  # Plug.Conn.Cookies.encode/2
  def encode(key, opts) do
    value = Map.get(opts, :value)
    path = Map.get(opts, :path, "/")

    IO.iodata_to_binary([
      "#{key}=#{value}; path=#{path}",
      emit_if(opts[:domain], &["; domain=", &1]),
      emit_if(opts[:max_age], &encode_max_age(&1, opts)),
      emit_if(Map.get(opts, :secure, false), "; secure"),
      emit_if(Map.get(opts, :http_only, true), "; HttpOnly"),
      emit_if(Map.get(opts, :same_site, nil), &"; SameSite=#{&1}"),
      emit_if(Map.get(opts, :partitioned, false), "; Partitioned"),
      emit_if(opts[:extra], &["; ", &1])
    ])
  end

  defp encode_max_age(max_age, opts) do
    time = Map.get(opts, :universal_time) || :calendar.universal_time()
    time = :calendar.gregorian_seconds_to_datetime(:calendar.datetime_to_gregorian_seconds(time) + max_age)
    ["; expires=", rfc2822(time), "; max-age=", Integer.to_string(max_age)]
  end

  defp emit_if(value, fun_or_string) do
    cond do
      !value -> []
      is_function(fun_or_string) -> fun_or_string.(value)
      is_binary(fun_or_string) -> fun_or_string
    end
  end

  defp pad(n) when n in 0..9, do: <<?0, ?0 + n>>
  defp pad(n), do: Integer.to_string(n)

  defp rfc2822({{year, month, day} = date, {hour, minute, second}}) do
    wd = Enum.at(~w(Mon Tue Wed Thu Fri Sat Sun), :calendar.day_of_the_week(date) - 1)
    mn = Enum.at(~w(Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec), month - 1)
    [wd, ", ", pad(day), " ", mn, " ", Integer.to_string(year), " ", pad(hour), ":", pad(minute), ":", pad(second), " GMT"]
  end
end

defmodule Session do
  # Plug.Session.COOKIE put/4 and get/3 (:external_term_format).
  def put(term, skb, signing_salt, nil) do
    MV.sign(:erlang.term_to_binary(term), KG.generate(skb, signing_salt))
  end

  def put(term, skb, _signing_salt, {encryption_salt, iv}) do
    ME.encrypt_xcp(:erlang.term_to_binary(term), KG.generate(skb, encryption_salt), iv)
  end

  def get(cookie, skb, signing_salt, nil), do: MV.verify(cookie, KG.generate(skb, signing_salt)) |> decode()

  def get(cookie, skb, signing_salt, encryption_salt),
    do: ME.decrypt(cookie, KG.generate(skb, encryption_salt), KG.generate(skb, signing_salt)) |> decode()

  defp decode({:ok, binary}), do: {:term, :erlang.binary_to_term(binary)}
  defp decode(:error), do: {nil, %{}}
end

defmodule J do
  # A tiny JSON encoder (Elixir 1.14 has no JSON module): maps with atom or
  # string keys, lists, strings (ASCII), integers, booleans.
  def enc(m) when is_map(m) do
    inner = m |> Enum.sort_by(fn {k, _} -> to_string(k) end) |> Enum.map_join(",", fn {k, v} -> enc(to_string(k)) <> ":" <> enc(v) end)
    "{" <> inner <> "}"
  end

  def enc(l) when is_list(l), do: "[" <> Enum.map_join(l, ",\n", &enc/1) <> "]"
  def enc(b) when is_boolean(b), do: to_string(b)
  def enc(nil), do: "null"
  def enc(i) when is_integer(i), do: Integer.to_string(i)

  def enc(s) when is_binary(s) do
    true = String.printable?(s) and s == for(<<c <- s>>, c >= 0x20 and c < 0x7F, into: "", do: <<c>>)
    "\"" <> String.replace(String.replace(s, "\\", "\\\\"), "\"", "\\\"") <> "\""
  end
end


defmodule Check do
  # Lines: "<kind> <session cookie> <masked token>", kind signed | encrypted.
  def run(path, skb, signing_salt, encryption_salt) do
    results =
      for line <- File.read!(path) |> String.split("\n", trim: true) do
        [kind, cookie, masked] = String.split(line, " ")
        enc = if kind == "encrypted", do: encryption_salt, else: nil
        ok =
          case Session.get(cookie, skb, signing_salt, enc) do
            {:term, %{"_csrf_token" => token}} -> CSRF.valid_state_and_csrf_token?(token, masked)
            _ -> false
          end

        IO.puts("#{if ok, do: "ok  ", else: "FAIL"} #{kind} #{String.slice(cookie, 0, 24)}... #{masked}")
        ok
      end

    if Enum.all?(results) and results != [], do: System.halt(0), else: System.halt(1)
  end
end

case System.argv() do
  ["check", path] ->
    Check.run(path, "firstrender-known-answer-secret-key-base-0123456789abcdefghijklmnopqrstuvwxyz-0123456789", "fx7Qk2Ns", "Lk0Rbq9v")

  _ ->
    :ok
end

hex = &Base.encode16(&1, case: :lower)
skb = "firstrender-known-answer-secret-key-base-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"
other_skb = "another-application-secret-key-base-0123456789abcdefghijklmnopqrstuvwxyz-0123456789abc"
signing_salt = "fx7Qk2Ns"
encryption_salt = "Lk0Rbq9v"

# KeyGenerator
keygen =
  for {secret, salt, opts} <- [
        {skb, signing_salt, []},
        {skb, encryption_salt, []},
        {skb, "signed cookie", [length: 64]},
        {skb, signing_salt, [digest: :sha512]},
        {skb, signing_salt, [digest: :sha384, iterations: 2]},
        {skb, signing_salt, [digest: :sha, length: 20, iterations: 1]},
        {"password", "salt", [iterations: 4096, length: 32]}
      ] do
    %{
      secret: secret,
      salt: salt,
      iterations: Keyword.get(opts, :iterations, 1000),
      length: Keyword.get(opts, :length, 32),
      digest: Atom.to_string(Keyword.get(opts, :digest, :sha256)),
      key: hex.(KG.generate(secret, salt, opts))
    }
  end

# MessageVerifier
sign_key = KG.generate(skb, signing_salt)

verifier =
  for {msg, digest} <- [{"hello", :sha256}, {"", :sha256}, {<<131, 116, 0, 0, 0, 0>>, :sha256}, {"José", :sha384}, {"x", :sha512}] do
    signed = MV.sign(msg, sign_key, digest)
    {:ok, ^msg} = MV.verify(signed, sign_key)
    %{key: hex.(sign_key), message: hex.(msg), digest: Atom.to_string(digest), signed: signed}
  end

# MessageEncryptor
enc_key = KG.generate(skb, encryption_salt)
iv24 = for i <- 0..23, into: <<>>, do: <<i * 7 + 3>>

xcp =
  for {msg, aad} <- [{"José", "A128GCM"}, {"", "A128GCM"}, {:erlang.term_to_binary(%{"_csrf_token" => "abc"}), "A128GCM"}, {"custom aad", "other"}] do
    e = ME.encrypt_xcp(msg, aad, enc_key, iv24)
    {:ok, ^msg} = ME.decrypt(e, aad, enc_key, sign_key)
    %{secret: hex.(enc_key), sign_secret: hex.(sign_key), aad: aad, iv: hex.(iv24), message: hex.(msg), encrypted: e}
  end

cek = for i <- 1..16, into: <<>>, do: <<i>>
iv12 = for i <- 1..12, into: <<>>, do: <<255 - i>>
wrap_iv = for i <- 1..12, into: <<>>, do: <<i * 3>>

a128 =
  for msg <- ["José", :erlang.term_to_binary(%{"_csrf_token" => "abc"})] do
    e = ME.encrypt_a128gcm(msg, enc_key, sign_key, cek, iv12, wrap_iv)
    {:ok, ^msg} = ME.decrypt(e, enc_key, sign_key)
    %{secret: hex.(enc_key), sign_secret: hex.(sign_key), cek: hex.(cek), iv: hex.(iv12), wrap_iv: hex.(wrap_iv), message: hex.(msg), encrypted: e}
  end

hchacha = [%{key: hex.(enc_key), nonce: hex.(binary_part(iv24, 0, 16)), subkey: hex.(ME.hchacha20(enc_key, binary_part(iv24, 0, 16)))}]

# CSRF
rand18 = fn seed -> for i <- 0..17, into: <<>>, do: <<rem(seed * 31 + i * 17, 256)>> end
csrf =
  for seed <- [1, 2, 3, 250] do
    token = CSRF.generate_token(rand18.(seed))
    mask = CSRF.generate_token(rand18.(seed + 100))
    masked = CSRF.mask(token, mask)
    true = CSRF.valid_state_and_csrf_token?(token, masked)
    24 = byte_size(token)
    56 = byte_size(masked)
    %{token: token, mask: mask, masked: masked}
  end

t1 = hd(csrf).token
t2 = Enum.at(csrf, 1).token
m1 = hd(csrf).masked
std_masked = Base.encode64(:crypto.exor(t1, hd(csrf).mask)) <> hd(csrf).mask

validity =
  [
    {t1, m1},
    {t2, m1},
    {t1, std_masked},
    {t1, String.slice(m1, 0, 55)},
    {t1, m1 <> "A"},
    {String.slice(t1, 0, 23), m1},
    {t1, String.replace(m1, ~r/^./, "!")},
    {t1, "SFMyNTY.abc.def"},
    {t1, ""}
  ]
  |> Enum.map(fn {state, tok} -> %{state: state, masked: tok, valid: CSRF.valid_state_and_csrf_token?(state, tok)} end)

host_tokens =
  for host <- ["example.com", "sub.example.com:4000"] do
    random = Enum.at(csrf, 2).token
    tok = CSRF.token_for_host(skb, t1, random, host)
    true = CSRF.valid_host_token?(skb, t1, tok, host)
    false = CSRF.valid_host_token?(skb, t1, tok, "evil.test")
    %{secret_key_base: skb, unmasked: t1, random: random, host: host, token: tok}
  end

# Session cookies
sessions = [
  {"only csrf", %{"_csrf_token" => t1}},
  {"empty", %{}},
  {"user", %{"_csrf_token" => t1, "user_token" => <<1, 2, 3, 250>>, "live_socket_id" => "users_sessions:AbC", "n" => 42}},
  {"user without csrf", %{"user_id" => 7, "locale" => "de"}},
  {"atom keys", %{:user_id => 7, "_csrf_token" => t2}},
  {"wrong size csrf", %{"_csrf_token" => "short"}},
  {"not a map", {:ok, "x"}},
  {"list", [1, 2, 3]}
]

session_vectors =
  for {name, term} <- sessions do
    signed = Session.put(term, skb, signing_salt, nil)
    {:term, ^term} = Session.get(signed, skb, signing_salt, nil)
    {nil, %{}} = Session.get(signed, other_skb, signing_salt, nil)
    {nil, %{}} = Session.get(signed, skb, "other salt", nil)
    encrypted = Session.put(term, skb, signing_salt, {encryption_salt, iv24})
    {:term, ^term} = Session.get(encrypted, skb, signing_salt, encryption_salt)

    added =
      if is_map(term) do
        with_token = Map.put(term, "_csrf_token", t2)
        %{with_csrf_term: hex.(:erlang.term_to_binary(with_token)), with_csrf_signed: Session.put(with_token, skb, signing_salt, nil)}
      else
        %{}
      end

    Map.merge(added, %{name: name, term: hex.(:erlang.term_to_binary(term)), is_map: is_map(term), signed: signed, encrypted: encrypted})
  end

legacy_session =
  %{
    name: "only csrf, plug_crypto 1.x A128GCM",
    term: hex.(:erlang.term_to_binary(%{"_csrf_token" => t1})),
    encrypted: ME.encrypt_a128gcm(:erlang.term_to_binary(%{"_csrf_token" => t1}), enc_key, sign_key, cek, iv12, wrap_iv)
  }

{:term, %{"_csrf_token" => ^t1}} = Session.get(legacy_session.encrypted, skb, signing_salt, encryption_salt)

# Set-Cookie as Plug.Session writes it (Plug.Conn.put_resp_cookie -> Plug.Conn.Cookies.encode).
now = {{2026, 11, 25}, {13, 5, 9}}

set_cookies =
  for opts <- [
        %{},
        %{same_site: "Lax"},
        %{same_site: "Strict", secure: true, domain: "example.com", path: "/app", max_age: 86400},
        %{http_only: false, max_age: 0, extra: "Priority=High"},
        %{same_site: "None", secure: true, partitioned: true, max_age: 31_536_000}
      ] do
    line = Cookies.encode("_my_app_key", Map.merge(opts, %{value: hd(session_vectors).signed, universal_time: now}))
    o = Map.drop(opts, [:universal_time])
    %{opts: o, now: "2026-11-25T13:05:09Z", set_cookie: line}
  end

IO.puts(
  J.enc(%{
    source: "testdata/plugvectors.exs on Elixir #{System.version()} / OTP #{System.otp_release()}",
    secret_key_base: skb,
    other_secret_key_base: other_skb,
    signing_salt: signing_salt,
    encryption_salt: encryption_salt,
    keygen: keygen,
    verifier: verifier,
    xchacha: xcp,
    hchacha20: hchacha,
    a128gcm: a128,
    csrf_mask: csrf,
    csrf_valid: validity,
    csrf_host: host_tokens,
    sessions: session_vectors,
    legacy_session: legacy_session,
    set_cookies: set_cookies
  })
)
