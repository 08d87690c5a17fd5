// Compiled by g++ under libmesh (programs.bats); its output is compared.
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

template <typename T> struct Stats {
    T sum{}, mx{};
    void add(T v) {
        sum += v;
        mx = std::max(mx, v);
    }
};

struct Shape {
    virtual ~Shape() = default;
    virtual long area() const = 0;
};
struct Rect : Shape {
    long w, h;
    Rect(long a, long b) : w(a), h(b) {}
    long area() const override { return w * h; }
};
struct Tri : Shape {
    long b, h;
    Tri(long x, long y) : b(x), h(y) {}
    long area() const override { return b * h / 2; }
};

int main() {
    unsigned s = 7;
    auto rnd = [&s] { return s = s * 1103515245u + 12345u, (s >> 8) & 0xffffff; };
    std::map<std::string, std::vector<int>> m;
    std::unordered_map<unsigned, std::string> um;
    std::vector<std::unique_ptr<Shape>> shapes;
    Stats<long> st;
    for (int i = 0; i < 200000; i++) {
        unsigned r = rnd();
        std::string k = "key" + std::to_string(r % 5000);
        m[k].push_back(int(r));
        um[r % 20011] = k + "/" + std::to_string(i);
        if (i % 3 == 0)
            shapes.emplace_back(r & 1 ? static_cast<Shape *>(new Rect(r % 100, i % 50)) : new Tri(r % 70, i % 90));
    }
    for (auto &sh : shapes)
        st.add(sh->area());
    shapes.erase(std::remove_if(shapes.begin(), shapes.end(), [](auto &p) { return p->area() % 2; }), shapes.end());
    long total = 0;
    for (auto &kv : m) {
        std::sort(kv.second.begin(), kv.second.end());
        total += std::accumulate(kv.second.begin(), kv.second.end(), 0L) % 1000003;
    }
    std::ostringstream os;
    for (unsigned i = 0; i < 20011; i += 997)
        if (um.count(i))
            os << um[i] << ';';
    std::cout << "map keys " << m.size() << " total " << total << " shapes " << shapes.size() << " area sum " << st.sum
              << " max " << st.mx << "\n"
              << os.str() << "\n";
}
