// A fresh directory under $TEST_TMPDIR (or /tmp), removed with its contents when the
// object is destroyed unless TESSERA_KEEP_TEST_DIRS is set (for post-mortems).
#ifndef TESSERA_TESTS_TESTING_TEMP_DIR_H_
#define TESSERA_TESTS_TESTING_TEMP_DIR_H_

#include <string>

namespace tessera::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes `contents` to `path` (creating or truncating), mode 0644; aborts the test
// binary on failure (a broken test set-up, not a finding).
void WriteTestFile(const std::string& path, const std::string& contents);

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_TESTING_TEMP_DIR_H_
